"""Orbax checkpoints of the whole train state: exact round trips, meta, faults."""
import contextlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import wgan_gp as wgan_config
from gemgan import checkpointing
from gemgan import models
from gemgan import steps
from tests.conftest import REPO_ROOT


def tiny_config(**model) -> ml_collections.ConfigDict:
  """A 16 px, width-4 WGAN-GP that builds and runs in a second on CPU."""
  c = wgan_config.get_config("quick")
  c.data.image_size, c.model.width, c.model.latent_dim, c.batch_size = 16, 4, 8, 4
  c.model.update(model)
  return c


def make_state(config, seed: int = 0, step: int = 7) -> steps.TrainState:
  """A TrainState of `config`'s shapes filled with noise (no XLA compiles)."""
  g, d = models.build_models(config, num_classes=3)
  shapes = jax.eval_shape(lambda: steps.create_train_state(config, g, d))
  rng = np.random.RandomState(seed)

  def fill(x):
    if np.issubdtype(x.dtype, np.floating):
      return rng.standard_normal(x.shape).astype(x.dtype)
    if x.dtype == np.uint32:  # the PRNG key
      return rng.randint(0, 2**32, x.shape, dtype=np.uint64).astype(np.uint32)
    return np.full(x.shape, step, x.dtype)  # step and optimizer counts

  return jax.device_put(jax.tree_util.tree_map(fill, shapes))


def assert_trees_equal(a, b):
  """Same structure (NamedTuples included), dtypes and bits."""
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b)):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype, path
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


@contextlib.contextmanager
def read_only(path: pathlib.Path):
  """Makes `path` unwritable, for root too (chattr +i); skips if impossible."""
  os.chmod(path, 0o555)
  immutable = False
  try:
    if os.access(path, os.W_OK):  # root ignores modes
      immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    probe = path / "probe"
    try:
      probe.mkdir()
      probe.rmdir()
      pytest.skip(f"cannot make {path} read-only here (root without chattr)")
    except OSError:
      pass
    yield
  finally:
    if immutable:
      subprocess.run(["chattr", "-i", str(path)], check=True)
    os.chmod(path, 0o755)


@pytest.fixture(scope="module")
def config():
  return tiny_config(conditional=True)


@pytest.fixture(scope="module")
def state(config):
  return make_state(config)


def test_round_trip_is_bitwise_and_keeps_optimizer_types(tmp_path, config, state):
  ckpt = checkpointing.Checkpointer(tmp_path / "ckpt")
  ckpt.save(state, config)
  assert ckpt.all_steps() == [7]
  target = make_state(config, seed=1, step=0)  # same shapes, other values
  restored = ckpt.restore(target, config=config)
  ckpt.close()
  assert_trees_equal(restored, state)
  assert int(restored.step) == 7
  # optax states come back as their NamedTuples, not dicts.
  assert type(restored.generator.opt_state[0]) is type(state.generator.opt_state[0])
  assert not np.array_equal(restored.generator.params["conv_0"]["kernel"],
                            target.generator.params["conv_0"]["kernel"])


def test_generator_item_restores_alone(tmp_path, config, state):
  ckpt = checkpointing.Checkpointer(tmp_path / "ckpt")
  ckpt.save(state, config)
  item = checkpointing.split_state(make_state(config, seed=2))["generator"]
  generator = ckpt.restore_generator(item)
  assert set(generator) == {"params", "state", "ema_params"}
  assert_trees_equal(generator, checkpointing.split_state(state)["generator"])


def test_meta_holds_the_config_and_signature(tmp_path, config, state):
  ckpt = checkpointing.Checkpointer(tmp_path / "ckpt")
  ckpt.save(state, config)
  meta = ckpt.read_meta()
  assert meta["step"] == 7
  assert meta["config"] == json.loads(json.dumps(config.to_dict()))
  assert meta["signature"]["model"]["width"] == 4
  rebuilt = ml_collections.ConfigDict(meta["config"])
  assert checkpointing.model_signature(rebuilt) == json.loads(
      json.dumps(checkpointing.model_signature(config)))


def test_rolling_window_and_explicit_steps(tmp_path, config, state):
  ckpt = checkpointing.Checkpointer(tmp_path / "ckpt", max_to_keep=2)
  for step in (2, 4, 6):
    ckpt.save(state.replace(step=jnp.asarray(step, jnp.int32),
                            rng=jnp.asarray([0, step], jnp.uint32)), config)
  assert ckpt.all_steps() == [4, 6] and ckpt.latest_step() == 6
  restored = ckpt.restore(state, step=4)
  assert int(restored.step) == 4
  np.testing.assert_array_equal(restored.rng, [0, 4])
  with pytest.raises(checkpointing.CheckpointError, match=r"no checkpoint of step 2.*\[4, 6\]"):
    ckpt.restore(state, step=2)
  empty = checkpointing.Checkpointer(tmp_path / "empty")
  with pytest.raises(checkpointing.CheckpointError, match="no complete checkpoint"):
    empty.restore(state)


def test_unfinished_save_is_never_picked_and_is_cleaned_up(tmp_path, config, state):
  directory = tmp_path / "ckpt"
  ckpt = checkpointing.Checkpointer(directory)
  ckpt.save(state, config)
  ckpt.close()
  # What a kill mid-save leaves: a temporary folder with part of the items.
  partial = directory / "9.orbax-checkpoint-tmp-1234"
  shutil.copytree(directory / "7" / "generator", partial / "generator")
  reader = checkpointing.Checkpointer(directory, read_only=True)
  assert reader.all_steps() == [7]
  assert partial.exists()  # a reader (e.g. sampling during training) leaves it alone
  resumed = checkpointing.Checkpointer(directory)  # the training run's manager
  assert resumed.latest_step() == 7
  assert_trees_equal(resumed.restore(make_state(config, seed=3)), state)
  assert not partial.exists()


def test_changed_model_config_is_refused(tmp_path, config, state):
  ckpt = checkpointing.Checkpointer(tmp_path / "ckpt")
  ckpt.save(state, config)
  other = tiny_config(conditional=True)
  other.optimizer.g_lr = 1e-3  # not a model change: accepted
  other.num_train_steps = 10
  other.model.conv_impl = "xla" if config.model.conv_impl != "xla" else "fast"  # same params
  ckpt.check_compatible(other)
  other.model.width = 8
  with pytest.raises(checkpointing.CheckpointError, match=r"refusing to resume.*'width': 8"):
    ckpt.restore(state, config=other)
  bigger = tiny_config(conditional=True)
  bigger.data.image_size = 32
  with pytest.raises(checkpointing.CheckpointError, match=r"data\.image_size.*\(16, 32\)"):
    ckpt.check_compatible(bigger)


def test_model_keys_the_architecture_no_longer_has_do_not_block_a_resume(tmp_path, state):
  old = tiny_config(conditional=True, blocks_per_stage=1)  # as runs saved every model's keys
  ckpt = checkpointing.Checkpointer(tmp_path / "ckpt")
  ckpt.save(state, old)
  ckpt.check_compatible(tiny_config(conditional=True))


SAVE_STEP_8 = textwrap.dedent("""
    import resource, signal, sys
    from gemgan import checkpointing
    from tests.test_checkpointing import make_state, tiny_config
    directory, fault = sys.argv[1:]
    config = tiny_config(conditional=True)
    ckpt = checkpointing.Checkpointer(directory)
    if fault == "full_disk":
      # Writes past the limit fail (EFBIG) as writes to a full disk do (ENOSPC).
      signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
      limits = resource.getrlimit(resource.RLIMIT_FSIZE)
      resource.setrlimit(resource.RLIMIT_FSIZE, (64, limits[1]))
    try:
      ckpt.save(make_state(config, step=8), config)
      error = "none: the save succeeded"
    except checkpointing.CheckpointError as e:
      error = e
    if fault == "full_disk":
      resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    print("ERROR:", error)
""")


def save_step_8(directory, fault: str) -> str:
  """Runs a process that saves step 8 into `directory` and ends; its output.

  A subprocess, as a training run whose save failed stops (and a file-size
  limit would also hit pytest's capture files). It must end promptly.
  """
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO_ROOT)}
  try:
    result = subprocess.run([sys.executable, "-c", SAVE_STEP_8, str(directory), fault],
                            capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                            timeout=120)
  except subprocess.TimeoutExpired as e:
    raise AssertionError(f"the process hung after a failed save: {e.stdout}") from e
  assert "ERROR: saving the checkpoint of step 8" in result.stdout, (
      result.stdout + result.stderr[-3000:])
  assert "latest complete: 7" in result.stdout
  return result.stdout


def test_save_to_read_only_dir_fails_clearly_and_keeps_previous(tmp_path, config, state):
  directory = tmp_path / "ckpt"
  checkpointing.Checkpointer(directory).save(state, config)
  before = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
  with read_only(directory):
    error = save_step_8(directory, "read_only")
  assert re.search("Permission denied|Read-only|not permitted", error), error
  assert {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()} == before
  ckpt = checkpointing.Checkpointer(directory)
  assert ckpt.all_steps() == [7]
  assert_trees_equal(ckpt.restore(make_state(config, seed=4)), state)


def test_full_disk_fails_clearly_and_keeps_previous(tmp_path, config, state):
  directory = tmp_path / "ckpt"
  checkpointing.Checkpointer(directory).save(state, config)
  error = save_step_8(directory, "full_disk")
  assert "File too large" in error
  assert checkpointing.Checkpointer(directory, read_only=True).all_steps() == [7]
  # The rerun (with space again) resumes from step 7 and saves step 8.
  rerun = checkpointing.Checkpointer(directory)
  assert not list(directory.glob("8.orbax-checkpoint-tmp*"))  # removed at the next start
  assert_trees_equal(rerun.restore(make_state(config, seed=5)), state)
  rerun.save(make_state(config, step=8), config)
  assert rerun.all_steps() == [7, 8]
  assert not list(directory.glob("*tmp*"))


def test_checkpoint_written_on_gpu_restores_here(tmp_path, config, state):
  directory = tmp_path / "ckpt"
  ckpt = checkpointing.Checkpointer(directory)
  ckpt.save(state, config)
  ckpt.close()
  # Orbax records the writer's devices; a GPU run records cuda devices.
  shardings = list(directory.glob("7/*/_sharding"))
  assert shardings
  for path in shardings:
    text = path.read_text()
    assert "cpu:0" in text
    path.write_text(text.replace("cpu:0", "cuda:0"))
  checkpointing.write_checksums(str(directory / "7"))  # as the GPU run sealed it
  restored = checkpointing.Checkpointer(directory).restore(make_state(config, seed=6))
  assert_trees_equal(restored, state)
  assert restored.generator.params["conv_0"]["kernel"].devices() == {jax.devices()[0]}


def saved_steps_7_and_9(directory, config):
  """A checkpoint dir with intact steps 7 and 9 (different values)."""
  ckpt = checkpointing.Checkpointer(directory)
  ckpt.save(make_state(config, seed=0, step=7), config)
  ckpt.save(make_state(config, seed=1, step=9), config)
  ckpt.close()
  return directory / "9"


def largest_data_file(step_dir: pathlib.Path, item: str) -> pathlib.Path:
  return max((p for p in (step_dir / item).rglob("*") if p.is_file() and "/d/" in str(p)),
             key=lambda p: p.stat().st_size)


def flip_bytes(path: pathlib.Path, count: int = 256):
  data = bytearray(path.read_bytes())
  middle = len(data) // 2
  data[middle:middle + count] = bytes(b ^ 0xFF for b in data[middle:middle + count])
  path.write_bytes(bytes(data))


@pytest.mark.parametrize("corrupt", ["data", "metadata"])
def test_corrupt_latest_step_is_named_and_the_previous_one_used(tmp_path, config, corrupt,
                                                                caplog):
  directory = tmp_path / "ckpt"
  step_9 = saved_steps_7_and_9(directory, config)
  bad = (largest_data_file(step_9, "generator") if corrupt == "data"
         else step_9 / "critic" / "_METADATA")
  flip_bytes(bad, 256 if corrupt == "data" else 8)

  reader = checkpointing.Checkpointer(directory, read_only=True)  # what gemgan.sample uses
  with pytest.raises(checkpointing.CorruptCheckpoint,
                     match=rf"step 9 .*corrupt: {re.escape(str(bad))} does not match"):
    reader.read_meta(9)  # an explicit step is refused
  assert reader.read_meta()["step"] == 7  # no step asked: the newest intact one
  assert "Skipping the checkpoint of step 9" in caplog.text and str(bad) in caplog.text

  writer = checkpointing.Checkpointer(directory)  # a resuming training run
  restored = writer.restore_newest_intact(make_state(config, seed=2), config)
  assert_trees_equal(restored, make_state(config, seed=0, step=7))
  assert writer.all_steps() == [7]  # 9 moved aside, so the run can save step 9 again
  assert (tmp_path / "ckpt_corrupt" / "9").is_dir()


def test_a_step_without_checksums_is_not_intact(tmp_path, config):
  directory = tmp_path / "ckpt"
  step_9 = saved_steps_7_and_9(directory, config)
  (step_9 / checkpointing.CHECKSUMS).unlink()  # killed between Orbax's rename and ours
  ckpt = checkpointing.Checkpointer(directory, read_only=True)
  assert ckpt.newest_intact_step() == 7
  (directory / "7" / checkpointing.CHECKSUMS).unlink()
  ckpt = checkpointing.Checkpointer(directory, read_only=True)  # verifies afresh
  with pytest.raises(checkpointing.CheckpointError, match="no intact checkpoint.*step 9.*step 7"):
    ckpt.newest_intact_step()
