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


def test_main_loop_writes_every_output(tmp_path, caplog):
  workdir = str(tmp_path / "run")
  with caplog.at_level("INFO"):
    state = train.train_and_evaluate(tiny_quick_config(tmp_path), workdir)
  assert int(state.step) == 4
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in records] == [2, 4]  # one record a step: losses, rate, samples
  logged = [r for r in records if "d_loss" in r]
  assert [r["step"] for r in logged] == [2, 4]
  # kimg: real images shown to the critic, batch 4 x n_critic 1 an iteration.
  assert [r["kimg"] for r in logged] == [0.008, 0.016]
  assert all(r["img_per_sec"] > 0 for r in logged)
  # The console: compile time, one tick line a log step, a closing line.
  lines = [r.getMessage() for r in caplog.records]
  assert any(l.startswith("Compiled the iteration in ") for l in lines)
  ticks = [l for l in lines if l.startswith("kimg ")]
  assert [t.split(" |")[0] for t in ticks] == ["kimg 0.0/0.016 (50.0%)", "kimg 0.0/0.016 (100.0%)"]
  assert all(" img/s, " in t and " | d " in t and " gp " in t and " w " in t for t in ticks)
  assert any(l.startswith("Finished at kimg 0.0 (step 4)") and
             os.path.join(workdir, "checkpoints", "4") in l and "step_4.png" in l for l in lines)
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
