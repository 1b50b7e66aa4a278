"""Exponential moving average of generator parameters (StyleGAN2-ADA's schedule).

The EMA is set by a half-life in images, not a per-step decay, so it means
the same at any batch size: after `halflife_kimg * 1000` images the old
weights count half. A ramp-up caps the half-life at `rampup * images_seen`
so that early on, when the weights move fast, the average forgets quickly.
"""
import jax
import jax.numpy as jnp
import optax


def ema_decay(halflife_kimg: float, batch_size: int, images_seen: float | jax.Array,
              rampup: float | None = None) -> jax.Array:
  """The per-step decay beta = 0.5 ** (batch_size / half-life in images).

  As in StyleGAN2-ADA (training_loop.py): ema_nimg = halflife_kimg * 1000,
  capped at images_seen * rampup when rampup > 0 (None or 0: no ramp-up).
  With the ramp-up on, beta is 0 at images_seen = 0 (the EMA restarts from the
  current weights). Jittable: `images_seen` may be traced; the rest is static.
  """
  ema_nimg = jnp.asarray(halflife_kimg * 1000.0, jnp.float32)
  if rampup:
    ema_nimg = jnp.minimum(ema_nimg, jnp.asarray(images_seen, jnp.float32) * rampup)
  return 0.5 ** (batch_size / jnp.maximum(ema_nimg, 1e-8))


def update_ema(ema_params, params, decay: float | jax.Array):
  """decay * ema_params + (1 - decay) * params, leaf-wise; dtypes kept.

  decay = 0 returns `params` and decay = 1 returns `ema_params` exactly.
  """
  new = optax.incremental_update(params, ema_params, 1.0 - jnp.asarray(decay, jnp.float32))
  return jax.tree.map(lambda n, e: n.astype(e.dtype), new, ema_params)
