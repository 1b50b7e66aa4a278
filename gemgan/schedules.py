"""Cosine schedules over images seen (R3GAN anneals lr, beta2, gamma, EMA and aug p).

Each `config.schedule.<name>_end` that is set is reached after
`schedule.kimg` thousand images (0: the run's num_train_kimg), starting from
the config's plain value (e.g. `optimizer.g_lr`), and held after. Unset ends
stay constant.
"""
import math

import jax.numpy as jnp
import ml_collections


def cosine(start: float, end: float, total_images: float, images_seen):
  """start -> end along half a cosine over `total_images`, then `end`. Jittable."""
  t = jnp.clip(jnp.asarray(images_seen, jnp.float32) / total_images, 0.0, 1.0)
  return end + (start - end) * 0.5 * (1.0 + jnp.cos(math.pi * t))


def total_images(config: ml_collections.ConfigDict) -> float:
  return (config.schedule.kimg or config.num_train_kimg) * 1000.0


def is_scheduled(config: ml_collections.ConfigDict, name: str) -> bool:
  return config.schedule.get(f"{name}_end") is not None


def value(config: ml_collections.ConfigDict, name: str, start: float, images_seen):
  """`start`, or its cosine towards `config.schedule.<name>_end` when one is set."""
  if not is_scheduled(config, name):
    return jnp.asarray(start, jnp.float32)
  return cosine(start, config.schedule[f"{name}_end"], total_images(config), images_seen)


def factor(config: ml_collections.ConfigDict, name: str, start: float, images_seen):
  """value / start: how far the schedule has scaled `start` (1 when unscheduled).

  For values that follow another's schedule: D's lr moves by G's factor,
  R2's weight by R1's (`gamma`).
  """
  if not is_scheduled(config, name):
    return jnp.asarray(1.0, jnp.float32)
  return cosine(1.0, config.schedule[f"{name}_end"] / start, total_images(config), images_seen)
