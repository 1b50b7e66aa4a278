"""ADA: adaptive discriminator augmentation (Karras et al. 2020, arXiv:2006.06676).

Pure JAX, NHWC images in [-1, 1], the conventions of `gemgan.augment`. Like
DiffAugment, the same augmentation is applied to every image the critic sees
(real and fake), differentiably, so the generator trains through it. Unlike
DiffAugment, every op is applied to each sample independently with a
probability p that a feedback loop adapts: p rises while the critic
overfits (r_t = E[sign(D(real))] above a target) and falls otherwise.

Ops, named and parameterised as in NVlabs/stylegan2-ada-pytorch
training/augment.py (the 'blit', 'color' and 'cutout' parts of its pipelines),
applied in this order, each with its own Bernoulli(p) draw per sample:

- 'xflip': mirror left-right with probability 1/2 (ADA's i ~ U{0, 1}: a
  selected sample flips half the time, so P(flip) = p / 2).
- 'rotate90': k quarter-turns, k ~ U{0, 1, 2, 3} (np.rot90's direction);
  needs square images.
- 'xint': integer translation, t ~ U(-0.125, 0.125) of the size per axis,
  rounded to pixels; reflect fill (np.pad mode 'reflect', the edge pixel is
  not repeated), as ADA's geometric path pads.
- 'brightness': x + b, b ~ N(0, 0.2).
- 'contrast': x * c, c = 2^N(0, 0.5), i.e. lognormal(0, 0.5 ln 2). As in ADA,
  this scales around 0 (mid-grey), not around the image mean.
- 'saturation': deviation from the per-pixel channel mean (ADA's luma axis
  (1, 1, 1)/sqrt(3)) scaled by s = 2^N(0, 1), lognormal(0, ln 2).
- 'cutout': zero (mid-grey) a square of half the image's side at a uniform
  centre, clipped by the borders.

The three geometric ops run as one per-pixel gather (exact copies, no
resampling); ADA's other 'bgc' ops (arbitrary rotation, scaling, fractional
translation, luma flip, hue) and its filter/noise ops are not here. Values may
leave [-1, 1], as in ADA. p = 0 returns the input bit for bit.

Adapting p (training_loop.py's heuristic): every `interval` steps,
p += sign(r_t - target) * batch_size * interval / (speed_kimg * 1000), with r_t
the mean of sign(D(real)) over those steps; `update_p`. `DEFAULTS` holds the
values a config can copy.
"""
from typing import Sequence

import jax
import jax.numpy as jnp

from gemgan import augment as diffaugment
from gemgan import monitors

OPS = ("xflip", "rotate90", "xint", "brightness", "contrast", "saturation", "cutout")
GEOMETRIC_OPS = ("xflip", "rotate90", "xint")

XINT_MAX = 0.125  # ADA's xint_max: range of integer translation, of the size.
BRIGHTNESS_STD = 0.2  # ADA's brightness_std.
CONTRAST_STD = 0.5  # ADA's contrast_std, in log2 units.
SATURATION_STD = 1.0  # ADA's saturation_std, in log2 units.
CUTOUT_SIZE = 0.5  # ADA's cutout_size, of the side.

# StyleGAN2-ADA's defaults (train.py: --target 0.6, ada_interval 4, ada_kimg
# 500; p starts at 0), and the ops above.
DEFAULTS = {
    "ops": OPS,
    "target": 0.6,
    "interval": 4,
    "speed_kimg": 500,
    "p_init": 0.0,
}

# r_t = E[sign(D(real))]: the signal `update_p` feeds back on.
rt = monitors.overfit_rt


def validate_ops(ops: str | Sequence[str]) -> tuple[str, ...]:
  """('xflip', 'cutout') or 'xflip, cutout' -> a hashable tuple, checked.

  Raises ValueError naming an unknown op and the valid ones, so a config can
  be checked before anything is compiled.
  """
  if isinstance(ops, str):
    ops = [op.strip() for op in ops.split(",")] if ops.strip() else []
  ops = tuple(ops)
  for op in ops:
    if op not in OPS:
      raise ValueError(f"unknown ADA op {op!r} in {ops!r}; valid ops: {', '.join(OPS)}")
  return ops


def draw_params(rng: jax.Array, p: float | jax.Array, shape: Sequence[int],
                ops: Sequence[str] = OPS) -> dict[str, jax.Array]:
  """Per-sample draws for `apply_params`; unselected samples get the identity.

  Each op's key is fixed by its position in OPS, so choosing a subset of ops
  does not change the others' draws. Returns a dict with a key per op:
  'xflip' int32 [B] in {0, 1}; 'rotate90' int32 [B] quarter-turns;
  'xint' int32 [B, 2] shift (dy, dx), out[i, j] = x[i - dy, j - dx];
  'brightness' [B] (0 = off); 'contrast', 'saturation' [B] (1 = off);
  'cutout' [B, 3] (centre y, centre x as fractions, side fraction; 0 = off).
  """
  ops = validate_ops(ops)
  b, h, w = shape[0], shape[1], shape[2]
  p = jnp.asarray(p, jnp.float32)
  keys = dict(zip(OPS, jax.random.split(rng, len(OPS))))
  params = {}
  for op in ops:
    k_on, k_val = jax.random.split(keys[op])
    on = jax.random.uniform(k_on, (b,)) < p  # never at p = 0, always at p = 1
    normal = lambda: jax.random.normal(k_val, (b,))
    if op == "xflip":
      params[op] = jnp.where(on, jax.random.randint(k_val, (b,), 0, 2), 0)
    elif op == "rotate90":
      params[op] = jnp.where(on, jax.random.randint(k_val, (b,), 0, 4), 0)
    elif op == "xint":
      t = jax.random.uniform(k_val, (b, 2), minval=-XINT_MAX, maxval=XINT_MAX)
      shift = jnp.round(t * jnp.array([h, w], jnp.float32)).astype(jnp.int32)
      params[op] = jnp.where(on[:, None], shift, 0)
    elif op == "brightness":
      params[op] = jnp.where(on, normal() * BRIGHTNESS_STD, 0.0)
    elif op == "contrast":
      params[op] = jnp.where(on, jnp.exp2(normal() * CONTRAST_STD), 1.0)
    elif op == "saturation":
      params[op] = jnp.where(on, jnp.exp2(normal() * SATURATION_STD), 1.0)
    elif op == "cutout":
      centre = jax.random.uniform(k_val, (b, 2))
      params[op] = jnp.concatenate([centre, jnp.where(on, CUTOUT_SIZE, 0.0)[:, None]], 1)
  return params


def _reflect(idx: jax.Array, n: int) -> jax.Array:
  """np.pad 'reflect' index map for offsets up to n - 1 past either border."""
  idx = jnp.abs(idx)
  return jnp.where(idx > n - 1, 2 * (n - 1) - idx, idx)


def _blit(x: jax.Array, params: dict[str, jax.Array]) -> jax.Array:
  """xflip, then rotate90, then xint, as one gather of source pixels.

  Works backwards from each output pixel (ADA's G_inv): undo the shift
  (reflecting at the borders), the quarter-turns, then the flip. A gather
  copies values exactly, and its gradient is a scatter-add.
  """
  b, h, w, _ = x.shape
  rows = jnp.broadcast_to(jnp.arange(h)[None, :, None], (b, h, w))
  cols = jnp.broadcast_to(jnp.arange(w)[None, None, :], (b, h, w))
  if "xint" in params:
    shift = params["xint"][:, :, None, None]
    rows, cols = _reflect(rows - shift[:, 0], h), _reflect(cols - shift[:, 1], w)
  if "rotate90" in params:
    # np.rot90(m, k)[i, j] = m[src], k = 0..3: (i, j), (j, n-1-i), (n-1-i, n-1-j), (n-1-j, i).
    k = params["rotate90"][:, None, None]
    n1 = h - 1
    rows, cols = (jnp.select([k == 0, k == 1, k == 2], [rows, cols, n1 - rows], n1 - cols),
                  jnp.select([k == 0, k == 1, k == 2], [cols, n1 - rows, n1 - cols], rows))
  if "xflip" in params:
    cols = jnp.where(params["xflip"][:, None, None] == 1, w - 1 - cols, cols)
  return x[jnp.arange(b)[:, None, None], rows, cols]


def _color(x: jax.Array, params: dict[str, jax.Array]) -> jax.Array:
  """Brightness, then contrast, then saturation; off samples pass through exactly."""
  per_sample = lambda v: v.astype(x.dtype)[:, None, None, None]
  if "brightness" in params:
    bright = per_sample(params["brightness"])
    x = jnp.where(bright != 0, x + bright, x)
  if "contrast" in params:
    con = per_sample(params["contrast"])
    x = jnp.where(con != 1, x * con, x)
  if "saturation" in params:
    sat = per_sample(params["saturation"])
    luma = jnp.mean(x, -1, keepdims=True)
    x = jnp.where(sat != 1, luma + sat * (x - luma), x)
  return x


def _cutout(x: jax.Array, cutout: jax.Array) -> jax.Array:
  """Zeroes pixels whose centres lie within size/2 of the centre on both axes."""
  _, h, w, _ = x.shape
  centre_y, centre_x, half = cutout[:, 0, None], cutout[:, 1, None], cutout[:, 2, None] / 2
  out_y = jnp.abs((jnp.arange(h) + 0.5) / h - centre_y) >= half  # [B, H]
  out_x = jnp.abs((jnp.arange(w) + 0.5) / w - centre_x) >= half  # [B, W]
  keep = out_y[:, :, None] | out_x[:, None, :]
  return jnp.where(keep[..., None], x, jnp.zeros((), x.dtype))


def apply_params(images: jax.Array, params: dict[str, jax.Array]) -> jax.Array:
  """Applies `draw_params`' draws (the ops are its keys) in OPS order."""
  diffaugment.check_images(images, "ada.apply_params")
  if "rotate90" in params and images.shape[1] != images.shape[2]:
    raise ValueError(f"ADA op 'rotate90' needs square images, got {images.shape}")
  if any(op in params for op in GEOMETRIC_OPS):
    images = _blit(images, params)
  images = _color(images, params)
  if "cutout" in params:
    images = _cutout(images, params["cutout"])
  return images


def augment(images: jax.Array, p: float | jax.Array, rng: jax.Array,
            ops: str | Sequence[str] = OPS) -> jax.Array:
  """ADA-augments a batch: each op on each sample with probability p.

  Args:
    images: float [B, H, W, C] in [-1, 1]; square if 'rotate90' is used.
    p: augmentation probability in [0, 1]; may be traced (it lives in the
      train state). p = 0 is the exact identity, above 1 acts as 1.
    rng: PRNG key; the same key and p give the same augmentation.
    ops: op names (a subset of OPS, applied in OPS order) or a comma-separated
      string. Static: under `jax.jit` close over it or mark it static.

  Returns:
    Augmented images, same shape and dtype; differentiable w.r.t. `images`.
  """
  ops = validate_ops(ops)
  diffaugment.check_images(images, "ada.augment")
  if not ops:
    return images
  return apply_params(images, draw_params(rng, p, images.shape, ops))


def update_p(p: float | jax.Array, rt: float | jax.Array, *, batch_size: int,
             interval: int = DEFAULTS["interval"], target: float = DEFAULTS["target"],
             speed_kimg: float = DEFAULTS["speed_kimg"]) -> jax.Array:
  """One step of ADA's p controller, to call every `interval` train steps.

  NVlabs/stylegan2-ada-pytorch training/training_loop.py:
    adjust = sign(rt - target) * (batch_size * ada_interval) / (ada_kimg * 1000)
    p = max(p + adjust, 0)
  so p moves at most 1 per `speed_kimg` thousand real images. `rt` is the mean
  of sign(D(real)) over the interval's steps (ADA averages 'Loss/signs/real'
  since the last update; `rt(real_logits)` per step, averaged). rt == target
  leaves p as is. Clipped to [0, 1] here: ADA clips only at 0, but a p above 1
  augments no more and would lag on the way down.
  """
  step = batch_size * interval / (speed_kimg * 1000)
  p = jnp.asarray(p, jnp.float32)
  return jnp.clip(p + jnp.sign(jnp.asarray(rt, jnp.float32) - target) * step, 0.0, 1.0)
