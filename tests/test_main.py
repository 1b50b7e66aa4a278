"""Smoke run of the whole loop: every output a researcher looks for is written."""
import glob
import json
import os

import numpy as np
from PIL import Image

from configs import wgan_gp
from gemgan import train


def tiny_quick_config(tmp_path):
  c = wgan_gp.get_config("quick")
  c.data.image_size, c.data.num_examples = 16, 24
  c.data.data_dir = str(tmp_path / "tfds")
  c.model.width, c.model.latent_dim = 4, 8
  c.batch_size, c.n_critic = 4, 1
  c.num_train_steps = 4
  c.log_every_steps = c.sample_every_steps = 2
  c.checkpoint_every_steps = 2
  c.num_sample_grid = 16
  return c


def test_main_loop_writes_every_output(tmp_path):
  workdir = str(tmp_path / "run")
  state = train.train_and_evaluate(tiny_quick_config(tmp_path), workdir)
  assert int(state.step) == 4
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  logged = [r for r in records if "d_loss" in r]
  assert [r["step"] for r in logged] == [2, 4]
  for key in ("g_loss", "gradient_penalty", "wasserstein", "d_real", "d_fake", "d_grad_norm",
              "g_grad_norm"):
    assert all(np.isfinite(r[key]) for r in logged), key
  assert any("sample_diversity" in r for r in records)
  for step in (2, 4):
    grid = np.asarray(Image.open(os.path.join(workdir, "samples", f"step_{step}.png")))
    assert grid.shape == (2 + 4 * 18, 2 + 4 * 18, 3)  # 4x4 grid of 16 px, 2 px gaps
  assert os.path.getsize(os.path.join(workdir, "curves.png")) > 1000
  assert glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
  assert json.load(open(os.path.join(workdir, "config.json")))["model"]["width"] == 4
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]


def test_a_bad_config_value_ends_the_output_with_one_clear_line(tmp_path):
  from tests.conftest import REPO_ROOT  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  result = subprocess.run(
      [sys.executable, "-m", "gemgan.main", "--config=configs/wgan_gp.py:quick",
       f"--workdir={tmp_path / 'run'}", "--config.ema.halflife_kimg=-1"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
      env={**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"})
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.endswith("ConfigError: config.ema.halflife_kimg: must be a number > 0, got -1.0"), (
      result.stderr[-2000:])
  assert not os.path.exists(tmp_path / "run" / "checkpoints")
