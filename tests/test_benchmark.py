"""gemgan.benchmark: a smoke run of a tiny config (no timing asserts)."""
import json
import math
import os
import subprocess
import sys

from configs import wgan_gp as wgan_config
from gemgan import benchmark
from tests.test_steps import tiny

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("train_images_per_sec", "compile_seconds", "sample_images_per_sec",
        "input_images_per_sec", "flops_per_iteration", "peak_flops_per_sec", "mfu")


def test_run_reports_every_measurement():
  c = tiny(wgan_config, n_critic=2)
  r = benchmark.run(c, repeats=1, steps_per_repeat=1, warmup=0, measure_input=False)
  for key in KEYS[:3] + KEYS[4:]:
    assert math.isfinite(r[key]) and r[key] > 0, (key, r[key])
  assert r["input_images_per_sec"] is None
  assert r["train_images_per_sec_min"] <= r["train_images_per_sec"] <= r["train_images_per_sec_max"]
  assert r["mfu"] == r["achieved_flops_per_sec"] / r["peak_flops_per_sec"]


def test_flops_count_every_critic_update():
  # XLA's cost analysis counts a loop body once: a step with 3 critic updates
  # must cost one critic update more than with 2, as 2 costs more than 1.
  flops = []
  for n in (1, 2, 3):
    _, _, _, _, f, _ = benchmark.compile_train_step(tiny(wgan_config, n_critic=n), 16)
    flops.append(f)
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
    assert result[key] > 0, (key, result[key])
  assert result["model"] == "wgan_gp" and result["image_size"] == 16
