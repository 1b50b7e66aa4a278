"""The evaluator registry: a new metric is one registered class plus one config entry."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import wgan_gp
from gemgan import config_lib
from gemgan import evaluators
from gemgan import train
from gemgan.evaluators import base
from gemgan.metrics import inception
from gemgan.metrics import real_stats
from tests.conftest import REPO_ROOT
from tests.test_main import tiny_quick_config

CALLS = []  # (num images, mean brightness) of each call of the test's evaluator


@evaluators.register("test_brightness")
class Brightness(base.EvaluatorType):
  """A test-local metric: |mean brightness of the samples - of the photos|, lower is better."""
  KEYS = {"scale": 1.0}
  BEST_METRICS = ("brightness_gap",)

  def __call__(self, fakes):
    images = fakes.images(self.num_samples)
    CALLS.append((len(images), float(images.mean())))
    gap = abs(images.mean() - self.reals.images.mean()) * self.option("scale")
    return {"brightness_gap": float(gap)}


class _MeanColour:
  """A stand-in for Inception: mean and spread of each colour (no weights needed)."""
  weights_id = "test"

  def __init__(self, weights="", batch_size=0):
    del weights, batch_size

  def __call__(self, images):
    x = np.asarray(images, np.float32) / 255
    return np.concatenate([x.mean((1, 2)), x.std((1, 2))], axis=1)


def test_a_registered_type_runs_on_its_own_cadence_beside_fid(tmp_path, monkeypatch):
  monkeypatch.setattr(inception, "FeatureExtractor", _MeanColour)
  monkeypatch.setattr(real_stats, "default_cache_dir", lambda: str(tmp_path / "cache"))
  c = tiny_quick_config(tmp_path)  # 4 steps of 4 images: 0.004 kimg a step
  config_lib.add_fid_evaluator(c, 8, every_kimg=0.008)  # fid8: every 2 steps
  c.evaluators.bright = evaluators.spec("test_brightness", 6, every_kimg=0.004, scale=2.0)
  c.best_metric = "bright/brightness_gap"
  CALLS.clear()
  train.train_and_evaluate(c, str(tmp_path / "run"))
  records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
  assert [r["step"] for r in records if "bright/brightness_gap" in r] == [1, 2, 3, 4]
  assert [r["step"] for r in records if "fid8/fid" in r] == [2, 4]
  assert [n for n, _ in CALLS] == [6] * 4
  gaps = [r["bright/brightness_gap"] for r in records if "bright/brightness_gap" in r]
  from gemgan import input_pipeline  # pylint: disable=g-import-not-at-top
  real_mean = input_pipeline.load_dataset(c).images.mean()
  assert gaps == pytest.approx([2 * abs(m - real_mean) for _, m in CALLS], rel=1e-5)
  assert len(set(gaps)) > 1  # the generator changes between evaluations
  assert os.listdir(tmp_path / "run" / "checkpoints_best")


def _checked(entry, name="e"):
  c = config_lib.base_config()
  c.evaluators[name] = entry
  config_lib.validate(c)
  return c


def test_each_type_checks_its_own_keys_by_full_path():
  # An old entry without `type` is an inception evaluator.
  old = _checked(evaluators.spec("inception", 100, 1.0))
  del old.evaluators.e["type"]
  config_lib.validate(old)
  cases = [
      (evaluators.spec("fancy", 100), "config.evaluators.e.type: unknown evaluator type "
       "'fancy'"),
      (evaluators.spec("spectral", 100, bogus=1), "config.evaluators.e.bogus: not a key of "
       "evaluator type 'spectral'"),
      (evaluators.spec("inception", 100, swd=3), "config.evaluators.e.swd: must be bool"),
      (evaluators.spec("inception", 100, fid_inf_points=1),
       "config.evaluators.e.fid_inf_points: must be 0 (off) or >= 2"),
      (evaluators.spec("swd", 1), "config.evaluators.e.num_samples: must be an integer >= 2"),
      (evaluators.spec("per_class_fid", 100), "config.evaluators.e.type: 'per_class_fid' "
       "needs a class-conditional model"),
  ]
  for entry, message in cases:
    with pytest.raises(config_lib.ConfigError, match="^" + message.replace("(", r"\(")
                       .replace(")", r"\)")):
      _checked(entry)
  c = config_lib.base_config()
  c.evaluators.spec = evaluators.spec("spectral", 100, 5.0)
  c.best_metric = "spec/spectral_distance"
  config_lib.validate(c)  # any lower-is-better metric of a declared evaluator
  c.best_metric = "spec/fid"
  with pytest.raises(config_lib.ConfigError, match="config.best_metric: 'spec/fid' must be"):
    config_lib.validate(c)


def test_evaluate_mistakes_end_with_one_clear_line(tmp_path):
  (tmp_path / "empty_real").mkdir()
  (tmp_path / "empty_fake").mkdir()
  (tmp_path / "no_ckpt").mkdir()
  (tmp_path / "a_file").write_text("")
  cases = {
      "empty": ([f"--real={tmp_path / 'empty_real'}", f"--fake={tmp_path / 'empty_fake'}"],
                f"EvaluationError: --real={tmp_path / 'empty_real'}: no image files"),
      "no checkpoints": ([f"--workdir={tmp_path / 'no_ckpt'}"],
                         f"CheckpointError: no checkpoints folder in {tmp_path / 'no_ckpt'}"),
      "unwritable": ([f"--real={tmp_path / 'empty_real'}", f"--fake={tmp_path / 'empty_fake'}",
                      f"--out={tmp_path / 'a_file' / 'out.json'}"],
                     f"EvaluationError: --out={tmp_path / 'a_file' / 'out.json'}: cannot "
                     "write there"),
  }
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
  runs = {k: subprocess.Popen([sys.executable, "-m", "gemgan.evaluate", *args], cwd=REPO_ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for k, (args, _) in cases.items()}
  for k, proc in runs.items():
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (k, err[-2000:])
    assert "Traceback" not in err, (k, err[-2000:])
    last = err.strip().splitlines()[-1]
    assert cases[k][1] in last, (k, last)
