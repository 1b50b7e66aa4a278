"""Cosine schedules over images seen (R3GAN anneals lr, beta2, gamma, EMA and aug p).

`config.schedule.kimg` > 0 turns them on: each `<name>_end` that is set is
reached after that many thousand images, starting from the config's plain
value (e.g. `optimizer.g_lr`), and held after. Unset ends stay constant.
"""
import math

import jax.numpy as jnp
import ml_collections


def cosine(start: float, end: float, total_images: float, images_seen):
  """start -> end along half a cosine over `total_images`, then `end`. Jittable."""
  t = jnp.clip(jnp.asarray(images_seen, jnp.float32) / total_images, 0.0, 1.0)
  return end + (start - end) * 0.5 * (1.0 + jnp.cos(math.pi * t))


def value(config: ml_collections.ConfigDict, name: str, start: float, images_seen):
  """`start`, or its cosine towards `config.schedule.<name>_end` when one is set."""
  s = config.schedule
  end = s.get(f"{name}_end")
  if not s.kimg or end is None:
    return jnp.asarray(start, jnp.float32)
  return cosine(start, end, s.kimg * 1000.0, images_seen)


def is_scheduled(config: ml_collections.ConfigDict, name: str) -> bool:
  return bool(config.schedule.kimg) and config.schedule.get(f"{name}_end") is not None
