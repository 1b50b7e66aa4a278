"""gemgan.benchmark: a tiny config through the command line (no timing asserts).

One run covers `benchmark.run`'s every measurement: the command line is a thin
wrapper, and each run costs ~30 s of compiling on 2 cores."""
import importlib.util
import json
import math
import os
import re
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from configs import wgan_gp as wgan_config
from gemgan import benchmark
from gemgan import models
from gemgan import steps
from tests.test_steps import tiny

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("train_images_per_sec", "compile_seconds", "sample_images_per_sec",
        "input_images_per_sec", "flops_per_iteration", "peak_flops_per_sec", "mfu")


def test_flops_count_every_critic_update():
  # XLA's cost analysis counts a loop body once: a step with 3 critic updates
  # must cost one critic update more than with 2, as 2 costs more than 1.
  # Lowered only (no compile): the count needs the HLO, not an executable.
  flops = []
  for n in (1, 2, 3):
    c = tiny(wgan_config, n_critic=n)
    state = steps.create_train_state(c, *models.build_models(c, num_classes=10))
    batch = benchmark.random_batch(c, np.zeros((16, 16, 16, 3), np.uint8), step=0)
    flops.append(benchmark.iteration_flops(c, state, batch))
  one_critic_update = flops[1] - flops[0]
  assert one_critic_update > 0.5 * flops[0], flops  # the critic's update is most of it
  assert abs((flops[2] - flops[1]) - one_critic_update) < 1e-3 * one_critic_update, flops


def test_command_line_json(tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO_ROOT}
  cmd = [sys.executable, "-m", "gemgan.benchmark", "--config=configs/wgan_gp.py:quick",
         "--config.data.image_size=16", "--config.model.width=4", "--config.batch_size=4",
         f"--config.data.data_dir={tmp_path}", "--config.data.num_examples=64",
         "--repeats=1", "--steps=1", "--warmup=0", "--json"]
  out = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  for key in KEYS:
    assert math.isfinite(result[key]) and result[key] > 0, (key, result[key])
  assert (result["train_images_per_sec_min"] <= result["train_images_per_sec"]
          <= result["train_images_per_sec_max"])
  assert result["mfu"] == result["achieved_flops_per_sec"] / result["peak_flops_per_sec"]
  assert result["model"] == "wgan_gp" and result["image_size"] == 16


def test_peak_is_the_best_matmul_size_for_the_dtype(monkeypatch):
  asked = []
  rates = {1024: 3.0, 2048: 5.0, 4096: 4.0}
  monkeypatch.setattr(benchmark, "matmul_peak_flops",
                      lambda n, dtype: asked.append(n) or rates[n])
  assert benchmark.peak_flops(jnp.float32) == 5.0 and asked == [1024, 2048]
  asked.clear()
  rates[4096] = 9.0  # bf16 on AMX: the large size may win
  assert benchmark.peak_flops(jnp.bfloat16) == 9.0 and asked == [1024, 2048, 4096]


def test_vs_torch_without_torch_says_what_to_install(monkeypatch):
  monkeypatch.setattr(benchmark.importlib.util, "find_spec",
                      lambda name: None if name == "torch" else importlib.util.find_spec(name))
  with pytest.raises(benchmark.TorchReferenceMissing, match="requirements-metrics.txt"):
    benchmark.torch_reference()


def test_the_package_holds_no_torch_code():
  # The PyTorch yardstick lives in benchmarks/; inside gemgan/ only the
  # Inception weight converter reads torch files.
  package = os.path.join(REPO_ROOT, "gemgan")
  users = sorted(os.path.relpath(os.path.join(d, f), REPO_ROOT)
                 for d, _, files in os.walk(package) for f in files if f.endswith(".py")
                 and re.search(r"^\s*(import|from) torch\b",
                               open(os.path.join(d, f)).read(), re.M))
  assert users == ["gemgan/metrics/convert_inception.py"]


def test_a_bad_config_value_ends_with_one_clear_line():
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO_ROOT}
  cmd = [sys.executable, "-m", "gemgan.benchmark", "--config=configs/wgan_gp.py:quick",
         "--config.ema.halflife_kimg=-1"]
  out = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
  assert out.stderr.strip().splitlines()[-1].endswith(
      "ConfigError: config.ema.halflife_kimg: must be a number > 0, got -1.0")
