"""Data parallelism with jax.sharding: a 1-D mesh, batch split, state replicated.

One process or many (`jax.distributed.initialize()` first): each process
feeds its own slice of the global batch.
"""
import jax
from jax.sharding import NamedSharding, PartitionSpec as P
import numpy as np

from gemgan import steps


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh over `devices` (default: all, of every process)."""
  devices = jax.devices() if devices is None else devices
  return jax.sharding.Mesh(np.asarray(devices), ("data",))


def make_sharded_train_step(config, generator, critic, mesh, low_resolution: bool = False):
  """Jitted iteration with the batch split over `mesh` and the state replicated.

  Returns (train_step, state_sharding, batch_sharding). Under jit, BatchNorm's
  batch means are over the global batch, so results match one device.
  `low_resolution`: the first phase's iteration of a growing run (gemgan.growing).
  """
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P(None, "data"))  # [n_critic, batch, ...]
  step = jax.jit(steps.make_train_step(config, generator, critic,
                                       low_resolution=low_resolution),
                 out_shardings=(replicated, replicated), donate_argnums=(0,))
  return step, replicated, batch_sharding


def shard_batch(batch: dict, sharding) -> dict:
  """Host arrays [n_critic, local_batch, ...] -> global arrays sharded on axis 1."""
  if jax.process_count() == 1:
    return jax.device_put(batch, sharding)
  return jax.tree_util.tree_map(
      lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
