"""Train state and the jitted training iteration (critic steps, then G step).

Everything here is a pure function of explicit state: parameters, mutable
collections (BatchNorm statistics, spectral-norm vectors), optimizer states and
the run's base RNG key. Per-step randomness is `fold_in(state.rng, step)`, so a
run is reproducible from its seed and a resumed run draws the same numbers as
an unbroken one.
"""
import functools
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gemgan import augment
from gemgan import ema as ema_lib
from gemgan import losses
from gemgan import models
from gemgan import monitors

Variables = Any


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue bit-exactly."""
  step: jax.Array  # int32: completed iterations (= generator updates)
  g_params: Variables
  g_state: Variables  # non-param collections, e.g. {"batch_stats": ...}
  d_params: Variables
  d_state: Variables
  g_opt_state: optax.OptState
  d_opt_state: optax.OptState
  ema_params: Variables  # EMA of g_params (a copy of them when EMA is off)
  rng: jax.Array  # base PRNG key (raw uint32[2]); never advanced, only folded


def make_optimizers(config: ml_collections.ConfigDict):
  """(generator, critic) Adam as in the notebook / WGAN-GP paper."""
  o = config.optimizer
  return (optax.adam(o.g_lr, b1=o.b1, b2=o.b2), optax.adam(o.d_lr, b1=o.b1, b2=o.b2))


def sample_latent(rng, batch: int, latent_dim: int, dist: str):
  """z ~ N(0, 1) or U(-1, 1) (the notebook's WGAN-GP), float32 [batch, dim]."""
  if dist == "uniform":
    return jax.random.uniform(rng, (batch, latent_dim), minval=-1.0, maxval=1.0)
  return jax.random.normal(rng, (batch, latent_dim))


def _split_vars(variables):
  variables = dict(variables)
  params = variables.pop("params")
  return params, variables


def create_train_state(config: ml_collections.ConfigDict, generator: nn.Module,
                       critic: nn.Module) -> TrainState:
  """Initialises parameters and optimizer states from `config.seed`."""
  rng = jax.random.PRNGKey(config.seed)
  g_key, d_key = jax.random.split(jax.random.fold_in(rng, 2**31 - 1))  # apart from step keys
  size = config.data.image_size
  z = jnp.zeros((2, config.model.latent_dim), jnp.float32)
  labels = jnp.zeros((2,), jnp.int32)
  g_params, g_state = _split_vars(models.init_variables(generator, g_key, z, labels))
  d_params, d_state = _split_vars(
      models.init_variables(critic, d_key, jnp.zeros((2, size, size, 3)), labels))
  g_tx, d_tx = make_optimizers(config)
  return TrainState(
      step=jnp.zeros((), jnp.int32), g_params=g_params, g_state=g_state,
      d_params=d_params, d_state=d_state, g_opt_state=g_tx.init(g_params),
      d_opt_state=d_tx.init(d_params),
      # A copy, not an alias: the jitted step donates every buffer once.
      ema_params=jax.tree_util.tree_map(jnp.copy, g_params), rng=rng)


def images_from_indices(dataset_u8, indices, flips):
  """On-device batch: gather uint8 images, flip, scale to [-1, 1] float32."""
  images = dataset_u8[indices].astype(jnp.float32) / 127.5 - 1.0
  flipped = jnp.flip(images, axis=-2)
  return jnp.where(flips[..., None, None, None], flipped, images)


def make_train_step(config: ml_collections.ConfigDict, generator: nn.Module,
                    critic: nn.Module, unroll_critic: bool = False) -> Callable:
  """Returns `train_step(state, batch) -> (state, metrics)` (not yet jitted).

  `batch` holds `image` float [n_critic, B, H, W, 3] in [-1, 1] and `label`
  int [n_critic, B]; or, for on-device data, `index`/`flip` [n_critic, B] and
  the uint8 dataset under `dataset`. Each of the n_critic real batches feeds
  one critic update (as in the WGAN-GP paper); then the generator updates
  once. The critic updates run in a `lax.scan`; `unroll_critic` unrolls it
  (same results; for XLA's cost analysis, which counts a loop body once).
  """
  g_tx, d_tx = make_optimizers(config)
  d_loss_fn, g_loss_fn = losses.LOSSES[config.loss]
  latent_dim, latent_dist = config.model.latent_dim, config.latent_dist
  policy = config.augment.policy

  def augment_fn(x, key):
    return augment.diff_augment(x, policy, key) if policy else x

  def run_critic(d_params, d_state, x, labels, key):
    """Critic scores on augmented x; returns (scores, new mutable state)."""
    aug_key, drop_key = jax.random.split(key)
    out, new_state = critic.apply({"params": d_params, **d_state}, augment_fn(x, aug_key),
                                  labels, train=True, mutable=list(d_state),
                                  rngs={"dropout": drop_key})
    return out, {**d_state, **new_state}

  def generate(g_params, g_state, z, labels):
    out, new_state = generator.apply({"params": g_params, **g_state}, z, labels, train=True,
                                     mutable=list(g_state))
    return out, {**g_state, **new_state}

  def critic_update(carry, inputs, g_params, g_state):
    d_params, d_state, d_opt_state = carry
    real, labels, key, index = inputs
    k_z, k_real, k_fake, k_pen, k_alpha = jax.random.split(key, 5)
    batch = real.shape[0]
    fake, _ = generate(g_params, g_state, sample_latent(k_z, batch, latent_dim, latent_dist),
                       labels)
    fake = jax.lax.stop_gradient(fake)

    def loss_fn(d_params):
      real_out, state = run_critic(d_params, d_state, real, labels, k_real)
      fake_out, state = run_critic(d_params, state, fake, labels, k_fake)
      loss = d_loss_fn(real_out, fake_out)
      # Penalties see the critic as a per-sample function of its input
      # (augmentation included, with a fixed draw); their state updates are
      # discarded so they do not count as extra BatchNorm/SN steps.
      critic_fn = lambda x: run_critic(d_params, state, x, labels, k_pen)[0]
      gp = r1 = jnp.zeros((), jnp.float32)
      if config.gp_weight:
        alpha = jax.random.uniform(k_alpha, (batch,))
        gp = losses.gradient_penalty(critic_fn, real, fake, alpha)
        loss = loss + config.gp_weight * gp
      if config.r1_weight:
        # Lazy R1: every r1_every-th critic update, scaled up to compensate.
        every = config.r1_every
        r1 = jax.lax.cond(index % every == 0, lambda: losses.r1_penalty(critic_fn, real),
                          lambda: jnp.zeros((), jnp.float32))
        loss = loss + 0.5 * config.r1_weight * every * r1
      aux = dict(state=state, real_out=real_out, fake_out=fake_out, gp=gp, r1=r1)
      return loss, aux

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(d_params)
    updates, d_opt_state = d_tx.update(grads, d_opt_state, d_params)
    d_params = optax.apply_updates(d_params, updates)
    real_out, fake_out = aux["real_out"], aux["fake_out"]
    metrics = {
        "d_loss": loss, "gradient_penalty": aux["gp"], "r1_penalty": aux["r1"],
        "d_real": jnp.mean(real_out), "d_fake": jnp.mean(fake_out),
        "wasserstein": jnp.mean(real_out) - jnp.mean(fake_out),
        "overfit_rt": monitors.overfit_rt(real_out),
        "d_grad_norm": optax.global_norm(grads),
    }
    return (d_params, aux["state"], d_opt_state), metrics

  def train_step(state: TrainState, batch):
    if "index" in batch:
      images = images_from_indices(batch["dataset"], batch["index"], batch["flip"])
    else:
      images = batch["image"].astype(jnp.float32)
    labels = batch["label"]
    n_critic, batch_size = labels.shape
    key = jax.random.fold_in(state.rng, state.step)
    critic_keys = jax.random.split(jax.random.fold_in(key, 0), n_critic)
    (d_params, d_state, d_opt_state), d_metrics = jax.lax.scan(
        functools.partial(critic_update, g_params=state.g_params, g_state=state.g_state),
        (state.d_params, state.d_state, state.d_opt_state),
        (images, labels, critic_keys, jnp.arange(n_critic)), unroll=unroll_critic)
    d_metrics = jax.tree_util.tree_map(jnp.mean, d_metrics)

    g_labels = labels[-1]
    g_params, g_state, g_opt_state = state.g_params, state.g_state, state.g_opt_state
    for i in range(config.n_generator):  # usually 1; the notebook's WGAN-GP did 2
      k_z, k_critic = jax.random.split(jax.random.fold_in(key, 1 + i))
      z = sample_latent(k_z, batch_size, latent_dim, latent_dist)

      def g_objective(g_params, g_state=g_state, z=z, k_critic=k_critic):
        fake, g_state = generate(g_params, g_state, z, g_labels)
        # The critic runs in training mode; its state updates are dropped.
        fake_out, _ = run_critic(d_params, d_state, fake, g_labels, k_critic)
        return g_loss_fn(fake_out), (g_state, fake_out)

      (g_loss, (g_state, fake_out)), g_grads = jax.value_and_grad(
          g_objective, has_aux=True)(g_params)
      updates, g_opt_state = g_tx.update(g_grads, g_opt_state, g_params)
      g_params = optax.apply_updates(g_params, updates)

    ema_params = g_params
    if config.ema.enabled:
      images_seen = state.step.astype(jnp.float32) * batch_size  # before this step, as ADA
      decay = ema_lib.ema_decay(config.ema.halflife_kimg, batch_size, images_seen,
                                config.ema.rampup)
      ema_params = ema_lib.update_ema(state.ema_params, g_params, decay)

    new_state = state.replace(
        step=state.step + 1, g_params=g_params, g_state=g_state, d_params=d_params,
        d_state=d_state, g_opt_state=g_opt_state, d_opt_state=d_opt_state,
        ema_params=ema_params)
    metrics = {**d_metrics, "g_loss": g_loss, "g_fake": jnp.mean(fake_out),
               "g_grad_norm": optax.global_norm(g_grads)}
    return new_state, metrics

  return train_step
