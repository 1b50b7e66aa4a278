"""Sampling from a checkpoint, without the training code: the library behind gemgan.sample.

Only the checkpoint's `generator` item is read (no critic, no optimizer), onto
this process's default device, whatever devices wrote it. The config comes
from the checkpoint. Sample i of seed s has the latent drawn from
fold_in(PRNGKey(s), i), so the same (seed, index) gives the same picture at
any num and any batch_size.

  sampler = sampling.load_generator(workdir)
  images = sampler.generate(num=16, seed=0)  # uint8 [16, H, W, 3]
"""
import functools
import os
from typing import Iterator, Optional, Sequence, Union

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from gemgan import checkpointing
from gemgan import config_lib
from gemgan import models
from gemgan import steps
from gemgan import visualize

Label = Union[int, str]


def _one_device_abstract(tree, device):
  """ShapeDtypeStructs placed on `device` (ignoring the devices that saved them)."""
  sharding = jax.sharding.SingleDeviceSharding(device)
  return jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def config_from_meta(saved: dict) -> ml_collections.ConfigDict:
  """The run's config, with keys added to gemgan since then at their defaults."""
  config = ml_collections.ConfigDict(saved)

  def fill(dst, defaults, prefix):
    for key, value in defaults.items():
      if key not in dst:
        logging.warning("checkpoint config has no %s%s; using the default %r", prefix, key,
                        value)
        dst[key] = value
      elif isinstance(value, dict) and isinstance(dst[key], ml_collections.ConfigDict):
        fill(dst[key], value, f"{prefix}{key}.")

  fill(config, config_lib.base_config(config.model.name).to_dict(), "")
  return config


def _saved_num_classes(directory: str, step: int) -> int:
  """Classes of a conditional generator, from the saved parameter shapes."""
  with ocp.StandardCheckpointer() as reader:
    tree = reader.metadata(os.path.join(directory, str(step), "generator")).item_metadata.tree
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree["params"]):
    if getattr(path[-1], "key", None) == "gamma":  # ConditionalBatchNorm: [classes, ch]
      return int(leaf.shape[0])
  raise checkpointing.CheckpointError(
      f"config says model.conditional but the generator in {directory}/{step} has no "
      "class embedding")


def slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  """Spherical interpolation between rows of a and b (linear where they are parallel)."""
  a_n = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
  b_n = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
  omega = jnp.arccos(jnp.clip(jnp.sum(a_n * b_n, axis=-1, keepdims=True), -1.0, 1.0))
  so = jnp.sin(omega)
  safe = so > 1e-6
  so = jnp.where(safe, so, 1.0)
  wa = jnp.where(safe, jnp.sin((1.0 - t) * omega) / so, 1.0 - t)
  wb = jnp.where(safe, jnp.sin(t * omega) / so, t)
  return wa * a + wb * b


def lerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  return a + t * (b - a)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _latents(seed, indices, latent_dim: int, latent_dist: str):
  key = jax.random.PRNGKey(seed)
  draw = lambda i: steps.sample_latent(jax.random.fold_in(key, i), 1, latent_dim, latent_dist)[0]
  return jax.vmap(draw)(indices)


@functools.lru_cache(maxsize=16)
def _jitted_apply(generator):
  """One compiled inference function per architecture, shared by checkpoints."""
  return models.generator_apply(generator)


class Sampler:
  """A restored generator: `generate` pictures, or `render` given latents."""

  def __init__(self, config: ml_collections.ConfigDict, generator,
               variables, step: int, num_classes: int,
               class_names: Optional[Sequence[str]] = None):
    self.config = config
    self.step = step
    self.num_classes = num_classes  # 0 when unconditional
    self.class_names = list(class_names) if class_names else None
    self.latent_dim = config.model.latent_dim
    self.latent_dist = config.latent_dist
    self._variables = variables
    self._state = {k: v for k, v in variables.items() if k != "params"}
    self._params = variables["params"]
    self._apply = _jitted_apply(generator)

  @property
  def variables(self):
    """The restored generator variables ('params' and any state)."""
    return self._variables

  @property
  def image_shape(self) -> tuple[int, int, int]:
    size = self.config.data.image_size
    return (size, size, 3)

  def latents(self, seed: int, indices) -> jax.Array:
    """z of samples `indices` of `seed`: row i depends only on (seed, i)."""
    return _latents(seed, jnp.asarray(indices, jnp.uint32), self.latent_dim, self.latent_dist)

  def label_index(self, label: Label) -> int:
    """A class given by index or name (names only if the checkpoint has them)."""
    if not self.num_classes:
      raise ValueError("this generator is not class-conditional (model.conditional=False)")
    if isinstance(label, str) and not label.lstrip("-").isdigit():
      names = self.class_names or []
      if label not in names:
        known = f"known: {names}" if names else "this checkpoint stores no class names"
        raise ValueError(f"unknown class {label!r}; use an index in [0, {self.num_classes}) "
                         f"({known})")
      return names.index(label)
    index = int(label)
    if not 0 <= index < self.num_classes:
      raise ValueError(f"class index {index} is outside [0, {self.num_classes})")
    return index

  def class_name(self, index: int) -> str:
    return self.class_names[index] if self.class_names else str(index)

  def resolve_labels(self, num: int, labels=None) -> Optional[np.ndarray]:
    """Labels of samples 0..num-1 (None when unconditional).

    None cycles through the classes (sample i gets class i % num_classes); an
    int or a class name gives every sample that class; an int array [num], or
    class weights [num, num_classes], is taken as it is.
    """
    if not self.num_classes:
      return None
    if labels is None:
      return np.arange(num) % self.num_classes
    if isinstance(labels, (int, str, np.integer)):
      return np.full(num, self.label_index(labels))
    labels = np.asarray(labels)
    if labels.shape[0] != num:
      raise ValueError(f"got {labels.shape[0]} labels for {num} samples")
    if np.issubdtype(labels.dtype, np.integer) and (
        labels.min() < 0 or labels.max() >= self.num_classes):
      raise ValueError(f"labels must lie in [0, {self.num_classes})")
    return labels

  def render(self, z, labels=None, batch_size: int = 64, psi: float = 1.0) -> np.ndarray:
    """uint8 [N, H, W, 3] for latents z [N, dim] (labels: int [N] or weights [N, C])."""
    return np.concatenate(list(self.iter_render(z, labels, batch_size, psi)), axis=0)

  def iter_render(self, z, labels=None, batch_size: int = 64,
                  psi: float = 1.0) -> Iterator[np.ndarray]:
    """As `render`, one batch at a time, so large requests stream through.

    Every batch is padded to `batch_size`, so one program is compiled. `psi`
    < 1 truncates: z moves toward the distribution's mean (0) by that factor.
    """
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    z = jnp.asarray(z, jnp.float32) * psi
    n = z.shape[0]
    if labels is None:
      labels = jnp.zeros((n,), jnp.int32)
    labels = jnp.asarray(labels)
    for start in range(0, n, batch_size):
      zb, yb = z[start:start + batch_size], labels[start:start + batch_size]
      m = zb.shape[0]
      if m < batch_size:
        zb = jnp.concatenate([zb, jnp.zeros((batch_size - m,) + zb.shape[1:], zb.dtype)])
        yb = jnp.concatenate([yb, jnp.zeros((batch_size - m,) + yb.shape[1:], yb.dtype)])
      yield visualize.to_uint8(self._apply(self._params, self._state, zb, yb))[:m]

  def iter_generate(self, num: int, seed: int = 0, batch_size: int = 64, labels=None,
                    psi: float = 1.0) -> Iterator[np.ndarray]:
    """As `generate`, one uint8 batch of `batch_size` at a time."""
    if num < 1:
      raise ValueError(f"num must be >= 1, got {num}")
    labels = self.resolve_labels(num, labels)
    for lo in range(0, num, batch_size):
      idx = np.arange(lo, min(lo + batch_size, num))
      yield from self.iter_render(self.latents(seed, idx),
                                  None if labels is None else labels[idx], batch_size, psi)

  def generate(self, num: int, seed: int = 0, batch_size: int = 64, labels=None,
               psi: float = 1.0) -> np.ndarray:
    """uint8 [num, H, W, 3]: samples 0..num-1 of `seed`.

    `labels` (conditional models) as in `resolve_labels`; `psi` as in
    `iter_render`.
    """
    return np.concatenate(list(self.iter_generate(num, seed, batch_size, labels, psi)), axis=0)

  def walk(self, points: int, frames: int, seed: int = 0, walks: int = 1, label=None,
           batch_size: int = 64, psi: float = 1.0,
           spherical: Optional[bool] = None) -> np.ndarray:
    """A looping latent walk: uint8 [points * frames, walks, H, W, 3].

    Walk w visits the latents of samples w, walks + w, ... of `seed` (points
    of them) and returns to the first, `frames` frames per leg. Spherical
    interpolation for Gaussian z (it keeps |z| typical), linear otherwise.
    A conditional model walks between classes too (soft class mixes), unless
    `label` fixes one.
    """
    if points < 2 or frames < 1 or walks < 1:
      raise ValueError(f"need points >= 2, frames >= 1, walks >= 1; got {points}, {frames}, "
                       f"{walks}")
    if spherical is None:
      spherical = self.latent_dist == "normal"
    keys = self.latents(seed, np.arange(points * walks)).reshape(points, walks, -1)
    t = jnp.arange(frames, dtype=jnp.float32) / frames
    a = jnp.repeat(keys, frames, axis=0)  # [points * frames, walks, dim]
    b = jnp.repeat(jnp.roll(keys, -1, axis=0), frames, axis=0)
    tt = jnp.tile(t, points)[:, None, None]
    z = (slerp if spherical else lerp)(a, b, tt).reshape(points * frames * walks, -1)
    labels = None
    if self.num_classes:
      if label is not None:
        labels = jnp.full(z.shape[0], self.label_index(label), jnp.int32)
      else:
        onehot = jax.nn.one_hot(np.arange(points * walks) % self.num_classes,
                                self.num_classes).reshape(points, walks, -1)
        la = jnp.repeat(onehot, frames, axis=0)
        lb = jnp.repeat(jnp.roll(onehot, -1, axis=0), frames, axis=0)
        labels = lerp(la, lb, tt).reshape(z.shape[0], -1)
    images = self.render(z, labels, batch_size, psi)
    return images.reshape((points * frames, walks) + self.image_shape)


def load_generator(workdir: str, step: Optional[int] = None, use_ema: bool = True,
                   device: Optional[jax.Device] = None) -> Sampler:
  """Restores the generator of `workdir`'s latest (or `step`) checkpoint.

  Builds no critic or optimizer: the restore target is `jax.eval_shape` of the
  generator's init, placed on `device` (default: this process's first device),
  so a checkpoint written on GPU loads on CPU and vice versa. `use_ema` picks
  the EMA weights (the same as the raw ones when the run had EMA off).
  """
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    raise checkpointing.CheckpointError(f"no checkpoints folder in {workdir}")
  ckpt = checkpointing.Checkpointer(directory, read_only=True)
  try:
    meta = ckpt.read_meta(step)  # the latest when step is None
    step = meta["step"]
    config = config_from_meta(meta["config"])
    num_classes = 0
    if config.model.conditional:
      num_classes = int(meta.get("num_classes") or _saved_num_classes(directory, step))
    generator, _ = models.build_models(config, num_classes=num_classes)
    z = jax.ShapeDtypeStruct((2, config.model.latent_dim), jnp.float32)
    y = jax.ShapeDtypeStruct((2,), jnp.int32)
    shapes = jax.eval_shape(functools.partial(models.init_variables, generator),
                            jax.random.PRNGKey(0), z, y)
    shapes = dict(shapes)
    params = shapes.pop("params")
    target = {"params": params, "state": shapes, "ema_params": params}
    item = ckpt.restore_generator(_one_device_abstract(target, device or jax.devices()[0]),
                                  step)
  finally:
    ckpt.close()
  use_ema = use_ema and bool(config.ema.enabled)
  variables = {"params": item["ema_params"] if use_ema else item["params"], **item["state"]}
  logging.info("Loaded the generator of step %d from %s (%s weights)", step, directory,
               "EMA" if use_ema else "raw")
  names = meta.get("class_names") if num_classes else None
  return Sampler(config, generator, variables, step, num_classes, names)


def write_animation(path: str, frames: np.ndarray, fps: float = 20.0) -> None:
  """Looping GIF, or MP4 when imageio's ffmpeg plugin is installed."""
  import imageio.v3 as iio  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
  ext = os.path.splitext(path)[1].lower()
  if ext == ".gif":
    iio.imwrite(path, frames, extension=".gif", duration=1000.0 / fps, loop=0)
  elif ext == ".mp4":
    try:
      iio.imwrite(path, frames, extension=".mp4", fps=fps)
    except (ImportError, OSError) as e:  # imageio: no backend for .mp4
      raise RuntimeError(f"writing {path} needs imageio's ffmpeg plugin "
                         f"(pip install imageio-ffmpeg, or av); write a .gif instead. ({e})") from e
  else:
    raise ValueError(f"unsupported animation type {ext!r} for {path}: use .gif or .mp4")


