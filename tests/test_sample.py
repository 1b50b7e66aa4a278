"""gemgan.sample: generator-only restore, reproducible pixels, grids, folders, walks."""
import os
import shutil
import subprocess
import sys

from absl import flags
import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemgan import checkpointing
from gemgan import sample
from gemgan import sampling
from tests.conftest import REPO_ROOT
from tests.test_checkpointing import make_state, tiny_config

CLASSES = ["amethyst", "beryl", "citrine"]


def plausible_state(config, seed=0, step=7):
  """Noise weights scaled as an init would scale them, so samples vary."""
  state = make_state(config, seed, step)

  def fix(path, x):
    name = path[-1].key
    if name == "kernel":
      return x / np.sqrt(np.prod(x.shape[:-1]))
    if name == "var":
      return np.abs(x) + 0.5
    return x

  fix_tree = lambda t: jax.device_put(jax.tree_util.tree_map_with_path(fix, t))
  g = state.generator
  return state.replace(generator=g.replace(params=fix_tree(g.params), state=fix_tree(g.state)),
                       ema_params=fix_tree(state.ema_params))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """Unconditional run with checkpoints at steps 7 and 9 (EMA on, so EMA != raw)."""
  path = tmp_path_factory.mktemp("run")
  config = tiny_config()
  assert config.ema.enabled
  ckpt = checkpointing.Checkpointer(path / "checkpoints")
  ckpt.save(plausible_state(config, seed=0, step=7), config)
  ckpt.save(plausible_state(config, seed=1, step=9), config)
  ckpt.close()
  return path


@pytest.fixture(scope="module")
def sampler(workdir):
  return sample.load_generator(str(workdir))


@pytest.fixture(scope="module")
def cond_workdir(tmp_path_factory):
  """Conditional run: step 7 without class names in its meta, step 9 with them."""
  path = tmp_path_factory.mktemp("cond")
  config = tiny_config(conditional=True)
  ckpt = checkpointing.Checkpointer(path / "checkpoints")
  ckpt.save(plausible_state(config, step=7), config)
  ckpt.save(plausible_state(config, step=9), config,
            extra={"class_names": CLASSES, "num_classes": 3})
  ckpt.close()
  return path


def run_cli(*args) -> str:
  """`python -m gemgan.sample ARGS` in this process, on flags of its own."""
  flag_values = flags.FlagValues()
  sample.define_flags(flag_values)
  flag_values(["sample", *args])
  return sample.run(flag_values)


def test_loads_latest_checkpoint_config_and_shapes(sampler):
  assert sampler.step == 9
  assert sampler.config.model.width == 4 and sampler.config.data.image_size == 16
  images = sampler.generate(5, seed=0)
  assert images.dtype == np.uint8 and images.shape == (5, 16, 16, 3)
  assert images.std() > 20  # real pictures, not a constant
  assert len({img.tobytes() for img in images}) == 5


def test_pixels_depend_only_on_seed_and_index(sampler):
  a = sampler.generate(6, seed=3, batch_size=4)
  np.testing.assert_array_equal(a, sampler.generate(6, seed=3, batch_size=8))
  np.testing.assert_array_equal(a[:2], sampler.generate(2, seed=3, batch_size=4))
  b = sampler.generate(6, seed=4, batch_size=4)
  assert not np.array_equal(a, b)
  # Streaming yields the same pixels in batch_size pieces.
  pieces = list(sampler.iter_generate(6, seed=3, batch_size=4))
  assert [len(p) for p in pieces] == [4, 2]
  np.testing.assert_array_equal(np.concatenate(pieces), a)


def test_step_and_ema_choices(workdir, sampler):
  at_7 = sample.load_generator(str(workdir), step=7)
  raw = sample.load_generator(str(workdir), use_ema=False)
  assert at_7.step == 7
  latest = sampler.generate(4, batch_size=4)
  assert not np.array_equal(at_7.generate(4, batch_size=4), latest)
  assert not np.array_equal(raw.generate(4, batch_size=4), latest)
  with pytest.raises(checkpointing.CheckpointError, match=r"no checkpoint of step 8.*\[7, 9\]"):
    sample.load_generator(str(workdir), step=8)
  with pytest.raises(checkpointing.CheckpointError, match="no checkpoints folder"):
    sample.load_generator(str(workdir / "nowhere"))


def test_truncation_pulls_samples_to_the_mean(sampler):
  same = sampler.generate(3, seed=0, batch_size=4, psi=0.0)  # z = 0 for all
  np.testing.assert_array_equal(same[0], same[1])
  full = sampler.generate(3, seed=0, batch_size=4)
  half = sampler.generate(3, seed=0, batch_size=4, psi=0.5)
  spread = lambda x: x.astype(np.float32).std(axis=0).mean()
  assert spread(half) < spread(full)


def test_slerp_and_lerp():
  a = jnp.array([[3.0, 0.0]])
  b = jnp.array([[0.0, 3.0]])
  np.testing.assert_allclose(sampling.slerp(a, b, 0.0), a, atol=1e-6)
  np.testing.assert_allclose(sampling.slerp(a, b, 1.0), b, atol=1e-6)
  mid = sampling.slerp(a, b, 0.5)
  np.testing.assert_allclose(jnp.linalg.norm(mid), 3.0, rtol=1e-6)  # on the sphere
  np.testing.assert_allclose(jnp.linalg.norm(sampling.lerp(a, b, 0.5)), 3 / np.sqrt(2), rtol=1e-6)
  np.testing.assert_allclose(sampling.slerp(a, 2 * a, 0.5), 1.5 * a, rtol=1e-6)  # parallel


def test_walk_loops_through_the_key_samples(sampler):
  frames = sampler.walk(points=3, frames=4, seed=0, walks=2, batch_size=8)
  assert frames.shape == (12, 2, 16, 16, 3)
  keys = sampler.generate(6, seed=0, batch_size=8)  # walk w visits samples w, 2 + w, 4 + w
  for point in range(3):
    for w in range(2):
      diff = np.abs(frames[4 * point, w].astype(int) - keys[2 * point + w].astype(int))
      assert diff.max() <= 1, (point, w)  # slerp at t=0 is z up to rounding
  # Frames move smoothly: neighbours are closer than the key points are.
  step = np.abs(np.diff(frames[:, 0].astype(np.float32), axis=0)).mean()
  assert step < np.abs(keys[0].astype(np.float32) - keys[2]).mean()


def test_cli_grid_is_reproducible(workdir, sampler, tmp_path):
  out = run_cli(f"--workdir={workdir}", "--num=5", "--seed=2", "--batch_size=4",
                f"--out={tmp_path}/grid.png")
  assert out == f"{tmp_path}/grid.png"
  grid = iio.imread(tmp_path / "grid.png")
  assert grid.shape == (2 * 18 + 2, 3 * 18 + 2, 3)  # 3 columns, 2 rows, 2 px gaps
  expected = sampler.generate(5, seed=2, batch_size=4)
  np.testing.assert_array_equal(grid[2:18, 2:18], expected[0])
  np.testing.assert_array_equal(grid[20:36, 2:18], expected[3])


def test_cli_folder_streams_individual_pngs(workdir, sampler, tmp_path):
  run_cli(f"--workdir={workdir}", "--num=5", "--batch_size=2", f"--out={tmp_path}/pngs/")
  names = sorted(os.listdir(tmp_path / "pngs"))
  assert names == [f"{i:06d}.png" for i in range(5)]
  expected = sampler.generate(5, seed=0, batch_size=4)
  for i, name in enumerate(names):
    np.testing.assert_array_equal(iio.imread(tmp_path / "pngs" / name), expected[i])


def test_cli_gif_loops(workdir, sampler, tmp_path):
  run_cli(f"--workdir={workdir}", "--interpolate=3", "--frames=4", "--batch_size=8",
          f"--out={tmp_path}/walk.gif")
  frames = iio.imread(tmp_path / "walk.gif", index=None)
  assert frames.shape == (12, 16, 16, 3)
  assert iio.immeta(tmp_path / "walk.gif")["loop"] == 0  # forever
  first = sampler.generate(1, seed=0, batch_size=8)[0]
  assert np.abs(frames[0].astype(int) - first.astype(int)).mean() < 2  # GIF palette
  assert len({f.tobytes() for f in frames}) == 12


def test_mp4_needs_the_ffmpeg_plugin(tmp_path):
  frames = np.zeros((4, 16, 16, 3), np.uint8)
  try:
    import imageio_ffmpeg  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    with pytest.raises(RuntimeError, match="ffmpeg plugin"):
      sample.write_animation(str(tmp_path / "walk.mp4"), frames)
  else:
    sample.write_animation(str(tmp_path / "walk.mp4"), frames)
    assert (tmp_path / "walk.mp4").stat().st_size > 0
  with pytest.raises(ValueError, match="use .gif or .mp4"):
    sample.write_animation(str(tmp_path / "walk.avi"), frames)


def test_conditional_labels_by_index_and_name(cond_workdir):
  unnamed = sample.load_generator(str(cond_workdir), step=7)
  assert unnamed.num_classes == 3 and unnamed.class_names is None  # from the shapes
  with pytest.raises(ValueError, match="stores no class names"):
    unnamed.generate(2, labels="beryl")
  named = sample.load_generator(str(cond_workdir), step=9)
  assert named.class_names == CLASSES
  by_name = named.generate(4, batch_size=4, labels="beryl")
  np.testing.assert_array_equal(by_name, named.generate(4, batch_size=4, labels=[1, 1, 1, 1]))
  assert not np.array_equal(by_name, named.generate(4, batch_size=4, labels=2))
  # Default: sample i gets class i % 3.
  np.testing.assert_array_equal(named.generate(4, batch_size=4)[2], named.generate(
      4, batch_size=4, labels=2)[2])
  with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
    named.generate(1, labels=3)


def test_cli_per_class_grid_and_named_files(cond_workdir, tmp_path):
  run_cli(f"--workdir={cond_workdir}", "--per_class=2", "--batch_size=4",
          f"--out={tmp_path}/classes.png")
  assert iio.imread(tmp_path / "classes.png").shape == (3 * 18 + 2, 2 * 18 + 2, 3)
  run_cli(f"--workdir={cond_workdir}", "--num=2", "--label=citrine", "--batch_size=4",
          f"--out={tmp_path}/pngs/")
  assert sorted(os.listdir(tmp_path / "pngs")) == ["000000_citrine.png", "000001_citrine.png"]


def test_checkpoint_from_gpu_loads_here(workdir, sampler, tmp_path):
  gpu_run = tmp_path / "gpu_run"
  shutil.copytree(workdir / "checkpoints" / "9", gpu_run / "checkpoints" / "9")
  for path in (gpu_run / "checkpoints" / "9").glob("*/_sharding"):
    path.write_text(path.read_text().replace("cpu:0", "cuda:0"))
  checkpointing.write_checksums(str(gpu_run / "checkpoints" / "9"))  # as the GPU run sealed it
  moved = sample.load_generator(str(gpu_run))
  np.testing.assert_array_equal(moved.generate(3, batch_size=4),
                                sampler.generate(3, batch_size=4))


def test_old_checkpoint_config_gets_new_defaults():
  saved = tiny_config().to_dict()
  del saved["model"]["conv_impl"]
  config = sampling.config_from_meta(saved)
  assert config.model.conv_impl == "auto"
  assert config.model.width == 4


def test_command_line_entry_point(workdir, tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO_ROOT)}
  out = tmp_path / "grid.png"
  result = subprocess.run(
      [sys.executable, "-m", "gemgan.sample", f"--workdir={workdir}", "--num=4",
       "--batch_size=4", f"--out={out}"], capture_output=True, text=True, env=env,
      cwd=REPO_ROOT, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith(str(out))
  assert iio.imread(out).shape == (38, 38, 3)


def _sample_cli(*args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO_ROOT)}
  return subprocess.run([sys.executable, "-m", "gemgan.sample", *args], capture_output=True,
                        text=True, env=env, cwd=REPO_ROOT, timeout=300)


def test_a_workdir_without_checkpoints_ends_with_one_clear_line(tmp_path):
  result = _sample_cli(f"--workdir={tmp_path}")
  assert result.returncode == 1 and not result.stdout
  # Nothing else: no traceback, no other library's start-up lines.
  assert result.stderr.strip().splitlines() == [
      result.stderr.strip().splitlines()[0][:9] +
      f"ERROR CheckpointError: no checkpoints folder in {tmp_path}"], result.stderr[-3000:]


def test_an_output_path_that_cannot_be_written_ends_with_one_clear_line(workdir, tmp_path):
  (tmp_path / "a_file").write_text("")
  result = _sample_cli(f"--workdir={workdir}", "--num=1", f"--out={tmp_path}/a_file/grid.png")
  assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert "ERROR " in last and "Error: " in last and f"{tmp_path}/a_file" in last, last
