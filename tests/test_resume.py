"""The training loop never loses a run: resume, kill -9, signals, NaN, failed saves.

Every run here is the same tiny WGAN-GP on 24 synthetic gems. The session's
persistent XLA cache (tests/conftest.py) is shared with the subprocesses, so
the iteration compiles once and later runs load it.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import wgan_gp
from gemgan import checkpointing
from gemgan import input_pipeline
from gemgan import monitors
from gemgan import parallel
from gemgan import sample
from gemgan import train
from gemgan import workdir_lock
from tests.conftest import REPO_ROOT
from tests.test_checkpointing import (assert_trees_equal, flip_bytes, largest_data_file,
                                      make_state, read_only)

NUM_STEPS = 8
TINY = {
    "data.image_size": 16, "data.num_examples": 24, "model.width": 4, "model.latent_dim": 8,
    "batch_size": 4, "n_critic": 1, "num_train_steps": NUM_STEPS, "log_every_steps": 1,
    "sample_every_steps": 1000, "checkpoint_every_steps": 2, "num_sample_grid": 4,
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  """Shared data dir; the environment for subprocess runs (it carries the
  session's persistent XLA cache from conftest, so the iteration compiles once)."""
  return {
      "data_dir": str(tmp_path_factory.mktemp("tfds")),
      "vars": {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO_ROOT),
               "TF_CPP_MIN_LOG_LEVEL": "3"},
  }


def overrides(env, **changes):
  return {**TINY, "data.data_dir": env["data_dir"],
          **{k.replace("__", "."): v for k, v in changes.items()}}


def make_config(env, **changes):
  """The tiny quick config; keyword `a__b=v` sets config.a.b."""
  config = wgan_gp.get_config("quick")
  for key, value in overrides(env, **changes).items():
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
      node = node[part]
    node[leaf] = value
  return config


def main_command(env, workdir, **changes):
  """The same run as `make_config` would give, as a `python -m gemgan.main` command."""
  return [sys.executable, "-m", "gemgan.main", "--config=configs/wgan_gp.py:quick",
          f"--workdir={workdir}"] + [f"--config.{k}={v}"
                                     for k, v in overrides(env, **changes).items()]


def files(directory):
  return {p: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(env, tmp_path_factory):
  """An unbroken run of NUM_STEPS: (workdir, final state on the host)."""
  workdir = tmp_path_factory.mktemp("reference")
  state = train.train_and_evaluate(make_config(env), str(workdir))
  assert int(state.step) == NUM_STEPS
  return workdir, jax.device_get(state)


def test_killed_during_a_save_then_resumed_is_bitwise_an_unbroken_run(env, reference,
                                                                        tmp_path):
  ckpt_dir = tmp_path / "checkpoints"
  killed_mid_save = False
  for _ in range(3):  # each try resumes the run; one kill landing mid-save is enough
    log = open(tmp_path / "log.txt", "w+")
    child = subprocess.Popen(main_command(env, tmp_path, checkpoint_every_steps=1),
                             env=env["vars"], cwd=REPO_ROOT, stdout=log, stderr=log)
    deadline = time.time() + 240
    while child.poll() is None and time.time() < deadline:
      entries = os.listdir(ckpt_dir) if ckpt_dir.exists() else []
      if any(e.isdigit() for e in entries) and any(".orbax-checkpoint-tmp" in e
                                                    for e in entries):
        child.send_signal(signal.SIGKILL)  # a save is being written: kill it now
        break
      time.sleep(0.002)
    rc = child.wait(timeout=60)
    log.seek(0)
    assert rc in (-signal.SIGKILL, 0), log.read()[-3000:]
    leftovers = [e for e in os.listdir(ckpt_dir) if ".orbax-checkpoint-tmp" in e]
    if rc == -signal.SIGKILL and leftovers:
      killed_mid_save = True
      break
    assert rc != 0, "the run finished before a kill could land during a save"
  assert killed_mid_save
  complete = checkpointing.Checkpointer(ckpt_dir, read_only=True).all_steps()
  assert complete and max(complete) < NUM_STEPS
  half_written = int(leftovers[0].split(".")[0])
  assert half_written not in complete

  resumed = train.train_and_evaluate(make_config(env, checkpoint_every_steps=1), str(tmp_path))
  assert not [e for e in os.listdir(ckpt_dir) if "tmp" in e]  # cleaned up
  assert_trees_equal(jax.device_get(resumed), reference[1])


def test_sigterm_saves_the_current_step_and_exits_cleanly(env, reference, tmp_path):
  del reference  # only for its compiled programs
  log = open(tmp_path / "log.txt", "w+")
  child = subprocess.Popen(
      main_command(env, tmp_path, num_train_steps=10_000, checkpoint_every_steps=10_000),
      env=env["vars"], cwd=REPO_ROOT, stdout=log, stderr=log)
  metrics = tmp_path / "metrics.jsonl"
  deadline = time.time() + 240
  while time.time() < deadline and child.poll() is None and not (
      metrics.exists() and metrics.read_text().count("d_loss") >= 2):
    time.sleep(0.05)
  child.send_signal(signal.SIGTERM)
  child.wait(timeout=120)
  log.seek(0)
  stderr = log.read()
  assert child.returncode == 0, stderr[-3000:]
  saved = checkpointing.Checkpointer(tmp_path / "checkpoints", read_only=True).all_steps()
  assert len(saved) == 1 and 2 <= saved[0] < 10_000, saved
  assert f"Signal 15: saved step {saved[0]}, exiting cleanly" in stderr


@pytest.mark.parametrize("module, function, at_step", [
    (input_pipeline, "batch_indices", 4),  # Ctrl-C while the next batch is fetched
    (monitors, "check_alarms", 3),  # Ctrl-C while step 3's metrics are logged
])
def test_sigint_saves_the_step_it_stops_at_and_resumes_exactly(
    env, reference, tmp_path, monkeypatch, module, function, at_step):
  original = getattr(module, function)

  def interrupting(*args, **kwargs):
    step = args[1] if function == "batch_indices" else args[0]["step"]
    if step == at_step:
      os.kill(os.getpid(), signal.SIGINT)
    return original(*args, **kwargs)

  monkeypatch.setattr(module, function, interrupting)
  state = train.train_and_evaluate(make_config(env), str(tmp_path))
  monkeypatch.undo()
  stopped = int(state.step)
  assert at_step <= stopped < NUM_STEPS
  saved = checkpointing.Checkpointer(tmp_path / "checkpoints").all_steps()
  assert saved[-1] == stopped, (saved, stopped)  # the step it stopped at is saved
  resumed = train.train_and_evaluate(make_config(env), str(tmp_path))
  assert_trees_equal(jax.device_get(resumed), reference[1])


def test_nan_stops_naming_the_step_and_keeps_the_last_checkpoint(env, reference, tmp_path):
  config = make_config(env)
  good = checkpointing.Checkpointer(reference[0] / "checkpoints", read_only=True)
  state = good.restore(make_state(config), step=4)
  # A critic blown up to 1e30 scores inf, so step 5's losses are not finite.
  state = state.replace(critic=state.critic.replace(
      params=jax.tree_util.tree_map(lambda x: x * 1e30, state.critic.params)))
  checkpointing.Checkpointer(tmp_path / "checkpoints").save(state, config)
  before = files(tmp_path / "checkpoints")
  with pytest.raises(train.TrainingDiverged,
                     match=r"non-finite \w+.* by step 5 .*latest checkpoint \(step 4\)") as e:
    train.train_and_evaluate(config, str(tmp_path))
  assert "diverged 1 step after resuming from step 4" in str(e.value)
  assert files(tmp_path / "checkpoints") == before


def test_failed_save_stops_with_a_clear_error_and_keeps_the_last_checkpoint(env, reference,
                                                                            tmp_path):
  ckpt_dir = tmp_path / "checkpoints"
  shutil.copytree(reference[0] / "checkpoints" / "4", ckpt_dir / "4")
  before = files(ckpt_dir)
  with read_only(ckpt_dir):
    try:
      result = subprocess.run(main_command(env, tmp_path), env=env["vars"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as e:
      raise AssertionError("the run hung after its failed save") from e
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]  # the clear line ends the output
  assert ("CheckpointError: saving the checkpoint of step 6 to " f"{ckpt_dir} failed"
          in last), result.stderr[-3000:]
  assert "latest complete: 4" in last and "Exception ignored" not in result.stderr
  assert files(ckpt_dir) == before
  assert int(checkpointing.Checkpointer(ckpt_dir).restore(make_state(make_config(env))).step) == 4


def test_resume_with_a_changed_model_is_refused(env, reference):
  workdir = reference[0]
  before = files(workdir)
  with pytest.raises(checkpointing.CheckpointError,
                     match=r"refusing to resume.*'bn_momentum': 0\.9"):
    train.train_and_evaluate(make_config(env, model__bn_momentum=0.9), str(workdir))
  assert files(workdir) == before


def test_a_run_checkpoint_samples_and_names_its_classes(env, reference):
  workdir = reference[0]
  meta = checkpointing.Checkpointer(workdir / "checkpoints", read_only=True).read_meta()
  info = input_pipeline.load_dataset(make_config(env))
  assert meta["class_names"] == info.class_names and meta["num_classes"] == info.num_classes
  sampler = sample.load_generator(str(workdir))  # restores onto what train saved
  assert sampler.step == NUM_STEPS
  images = sampler.generate(3, batch_size=4)
  assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8


def test_steps_in_flight_are_bounded_and_a_signal_saves_the_step_reached(
    env, reference, tmp_path, monkeypatch):
  del reference  # only for its compiled programs
  real = parallel.make_sharded_train_step
  slow = jax.jit(lambda x: jax.pure_callback(lambda v: (time.sleep(0.3), v)[1],
                                             jax.ShapeDtypeStruct(x.shape, x.dtype), x))
  outputs, running_at_dispatch = [], []

  def slow_steps(*args):
    step_fn, replicated, batch_sharding = real(*args)

    def slow_step(state, batch):
      running_at_dispatch.append(sum(not m["d_loss"].is_ready() for m in outputs))
      if len(outputs) == 5:
        os.kill(os.getpid(), signal.SIGINT)  # while dispatching step 6
      state, metrics = step_fn(state, batch)
      metrics = {**metrics, "d_loss": slow(metrics["d_loss"])}  # a slow iteration
      outputs.append(metrics)
      return state, metrics

    return slow_step, replicated, batch_sharding

  monkeypatch.setattr(parallel, "make_sharded_train_step", slow_steps)
  state = train.train_and_evaluate(make_config(
      env, num_train_steps=100, log_every_steps=1000, checkpoint_every_steps=1000,
      max_steps_in_flight=2), str(tmp_path))
  # Before step s, the loop waited for step s - 2: one earlier step at most still runs.
  assert max(running_at_dispatch) == 1, running_at_dispatch
  assert int(state.step) == 6
  assert checkpointing.Checkpointer(tmp_path / "checkpoints").all_steps() == [6]


def test_a_corrupt_latest_checkpoint_is_refused_by_sample_and_skipped_by_resume(
    env, reference, tmp_path, caplog):
  shutil.copytree(reference[0] / "checkpoints", tmp_path / "checkpoints")
  step_8 = tmp_path / "checkpoints" / "8"
  bad = largest_data_file(step_8, "generator")
  flip_bytes(bad)
  with pytest.raises(checkpointing.CorruptCheckpoint,
                     match=rf"step 8 .*{re.escape(str(bad))} does not match"):
    sample.load_generator(str(tmp_path), step=8)
  assert sample.load_generator(str(tmp_path)).step == 6  # no step asked: newest intact

  resumed = train.train_and_evaluate(make_config(env), str(tmp_path))  # 6 -> 8 again
  assert "Skipping the checkpoint of step 8" in caplog.text and str(bad) in caplog.text
  assert_trees_equal(jax.device_get(resumed), reference[1])
  assert (tmp_path / "checkpoints_corrupt" / "8").is_dir()


def test_a_second_trainer_on_a_live_workdir_is_refused_before_writing(env, tmp_path):
  with workdir_lock.WorkdirLock(str(tmp_path)):
    with pytest.raises(workdir_lock.WorkdirLocked, match=f"PID {os.getpid()}"):
      train.train_and_evaluate(make_config(env), str(tmp_path))
  assert os.listdir(tmp_path) == [workdir_lock.LOCK_NAME]
