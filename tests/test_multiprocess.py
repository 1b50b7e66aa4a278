"""Two processes (`gemgan.main --distributed`, CPU, gloo) train the model
that one process trains at the same global batch: same losses, same weights."""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from gemgan import sample
from tests.conftest import REPO_ROOT

OVERRIDES = ["--config=configs/wgan_gp.py:quick", "--config.data.image_size=16",
             "--config.data.num_examples=32", "--config.model.width=4",
             "--config.model.latent_dim=8", "--config.batch_size=8", "--config.n_critic=2",
             "--config.num_train_steps=3", "--config.log_every_steps=1",
             "--config.sample_every_steps=3", "--config.checkpoint_every_steps=3",
             "--config.num_sample_grid=4"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _launch(tmp_path, name, log_name, extra=()):
  """Starts `gemgan.main` on the tiny config; returns (process, its log file)."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO_ROOT))
  cmd = [sys.executable, "-m", "gemgan.main", *OVERRIDES,
         f"--config.data.data_dir={tmp_path / 'tfds'}", f"--workdir={tmp_path / name}", *extra]
  log = open(tmp_path / f"{log_name}.log", "w")
  return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log


def _wait(procs):
  for proc, log in procs:
    rc = proc.wait(timeout=600)
    log.close()
    assert rc == 0, open(log.name).read()[-4000:]


def _losses(workdir):
  records = [json.loads(l) for l in open(workdir / "metrics.jsonl")]
  return [(r["step"], r["d_loss"], r["g_loss"]) for r in records if "d_loss" in r]


def test_two_processes_train_the_one_process_model(tmp_path):
  _wait([_launch(tmp_path, "single", "single")])  # also prepares the data
  one = sample.load_generator(str(tmp_path / "single")).variables
  single = np.array([loss for _, *loss in _losses(tmp_path / "single")])
  # Batches drawn on the device (the default). The tf.data path's per-process
  # slice and its equality with device-drawn batches have unit tests
  # (test_input_pipeline), which cost seconds where a pair of processes costs a minute.
  port = _free_port()
  _wait([_launch(tmp_path, "multi", f"multi_{i}",
                 ["--distributed", f"--coordinator_address=localhost:{port}",
                  "--num_processes=2", f"--process_id={i}"]) for i in (0, 1)])
  multi = _losses(tmp_path / "multi")
  assert [step for step, _, _ in multi] == [1, 2, 3]
  np.testing.assert_allclose([loss for _, *loss in multi], single, rtol=1e-4, atol=1e-5)
  # Process 0 wrote the checkpoint; its generator equals the one-process one.
  two = sample.load_generator(str(tmp_path / "multi")).variables
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(one),
                          jax.tree_util.tree_leaves(two)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=str(path))
