"""DiffAugment (Zhao et al. 2020, arXiv:2006.10738) in JAX, for NHWC images in [-1, 1].

The same random, differentiable augmentation is applied to every image the
critic sees (real and fake, in every loss and penalty), so the generator is
trained through it and never learns to produce augmented images.

Ops follow the official code (mit-han-lab/data-efficient-gans), per sample:

- 'color': brightness + U(-0.5, 0.5); saturation: deviation from the
  per-pixel channel mean scaled by U(0, 2); contrast: deviation from the
  image mean scaled by U(0.5, 1.5). Values may leave [-1, 1], as there.
- 'translation': integer shift in [-H//8, H//8] x [-W//8, W//8], zero fill.
- 'cutout': an (H//2) x (W//2) square at a random centre (clipped at the
  borders) set to zero.

Zero is mid-grey in [-1, 1]. `strength` in [0, 1] scales every magnitude
(colour factors towards 1, shifts and cutout size towards 0); 0 returns the
input bit for bit. It may be a Python float or a traced scalar (e.g. an
adaptive strength in the train state).
"""
from typing import Callable

import jax
import jax.numpy as jnp

TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def _per_sample(key, x, minval, maxval):
  """U(minval, maxval) per sample, shaped [B, 1, 1, 1] in x's dtype."""
  return jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype, minval, maxval)


def _color(x, key, strength):
  k_bright, k_sat, k_con = jax.random.split(key, 3)
  strength = strength.astype(x.dtype)
  # Written as x + (factor - 1) * (x - mean) so that factor == 1 is exact.
  x = x + strength * _per_sample(k_bright, x, -0.5, 0.5)
  x = x + strength * _per_sample(k_sat, x, -1.0, 1.0) * (x - jnp.mean(x, -1, keepdims=True))
  x = x + strength * _per_sample(k_con, x, -0.5, 0.5) * (
      x - jnp.mean(x, (1, 2, 3), keepdims=True))
  return x


def _translation(x, key, strength):
  b, h, w, c = x.shape
  max_h, max_w = int(h * TRANSLATION_RATIO), int(w * TRANSLATION_RATIO)
  k_h, k_w = jax.random.split(key)
  # Draw as the official code does, then scale: strength 1 is its distribution.
  dh = jnp.round(strength * jax.random.randint(k_h, (b,), -max_h, max_h + 1)).astype(jnp.int32)
  dw = jnp.round(strength * jax.random.randint(k_w, (b,), -max_w, max_w + 1)).astype(jnp.int32)
  padded = jnp.pad(x, ((0, 0), (max_h, max_h), (max_w, max_w), (0, 0)))
  # out[i, j] = x[i + dh, j + dw], zero outside: a per-sample window of the
  # padded image (a gather whose gradient is a scatter-add).
  crop = lambda img, i, j: jax.lax.dynamic_slice(img, (i, j, 0), (h, w, c))
  return jax.vmap(crop)(padded, max_h + dh, max_w + dw)


def _cutout(x, key, strength):
  b, h, w, _ = x.shape
  size_h = jnp.floor(h * CUTOUT_RATIO * strength).astype(jnp.int32)
  size_w = jnp.floor(w * CUTOUT_RATIO * strength).astype(jnp.int32)
  k_h, k_w = jax.random.split(key)
  # The official centre range: [0, H + 1 - size % 2).
  centre_h = jax.random.randint(k_h, (b, 1), 0, h + 1 - size_h % 2)
  centre_w = jax.random.randint(k_w, (b, 1), 0, w + 1 - size_w % 2)
  lo_h, lo_w = centre_h - size_h // 2, centre_w - size_w // 2
  rows, cols = jnp.arange(h)[None], jnp.arange(w)[None]
  in_h = (rows >= lo_h) & (rows < lo_h + size_h)  # [B, H]
  in_w = (cols >= lo_w) & (cols < lo_w + size_w)  # [B, W]
  keep = ~(in_h[:, :, None] & in_w[:, None, :])
  return x * keep[..., None].astype(x.dtype)


OPS: dict[str, Callable] = {
    "color": _color,
    "translation": _translation,
    "cutout": _cutout,
}


def parse_policy(policy: str) -> tuple[str, ...]:
  """'color, translation' -> ('color', 'translation'); '' -> ().

  Raises ValueError naming an unknown or empty op and the valid ones, so a
  config can be checked before anything is compiled.
  """
  if not policy.strip():
    return ()
  ops = tuple(op.strip() for op in policy.split(","))
  for op in ops:
    if op not in OPS:
      raise ValueError(f"unknown DiffAugment op {op!r} in policy {policy!r}; "
                       f"valid ops: {', '.join(OPS)}")
  return ops


def check_images(images: jax.Array, caller: str) -> None:
  """Raises ValueError unless images are float [B, H, W, C] (shared with gemgan.ada)."""
  if images.ndim != 4 or not jnp.issubdtype(images.dtype, jnp.floating):
    raise ValueError(f"{caller} wants float NHWC images, got {images.dtype} "
                     f"{images.shape}")


def diff_augment(images: jax.Array, policy: str, rng: jax.Array,
                 strength: float | jax.Array = 1.0) -> jax.Array:
  """Applies the policy's ops in order, with independent draws per sample.

  Args:
    images: float [B, H, W, C] in [-1, 1].
    policy: comma-separated op names ('color', 'translation', 'cutout'); ''
      is the identity. Static: under `jax.jit` close over it or mark it static.
    rng: PRNG key; the same key gives the same augmentation.
    strength: scales every op's magnitude; 0 is the exact identity.

  Returns:
    Augmented images, same shape and dtype; differentiable w.r.t. `images`.
  """
  ops = parse_policy(policy)
  check_images(images, "diff_augment")
  if not ops:
    return images
  strength = jnp.asarray(strength, jnp.float32)
  for op, key in zip(ops, jax.random.split(rng, len(ops))):
    images = OPS[op](images, key, strength)
  return images
