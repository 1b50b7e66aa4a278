"""Train state and the jitted training iteration (critic steps, then G step).

Everything here is a pure function of explicit state: parameters, mutable
collections (BatchNorm statistics, spectral-norm vectors), optimizer states,
the augmentation probability and the run's base RNG key. Per-step randomness
is `fold_in(state.rng, step)`, so a run is reproducible from its seed and a
resumed run draws the same numbers as an unbroken one. The objectives live in
`gemgan.objectives`; this module holds the critic scan, the optimizer updates,
EMA and ADA's probability update.
"""
import dataclasses
import functools
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gemgan import ada
from gemgan import augment
from gemgan import ema as ema_lib
from gemgan import growing
from gemgan import models
from gemgan import monitors
from gemgan import objectives
from gemgan import schedules
from gemgan import visualize

Variables = Any


@flax.struct.dataclass
class NetState:
  """One network's parameters, mutable collections (e.g. batch_stats) and optimizer state."""
  params: Variables
  state: Variables
  opt_state: optax.OptState


@flax.struct.dataclass
class AugmentState:
  """ADA's augmentation probability and the sign(D(real)) it adapts from."""
  p: jax.Array  # float32
  sign_sum: jax.Array  # sum of sign(D(real)) since the last adjustment
  count: jax.Array  # how many scores that sum holds


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue bit-exactly."""
  step: jax.Array  # int32: completed iterations (= generator updates)
  generator: NetState
  critic: NetState
  ema_params: Variables  # EMA of the generator's params (a copy of them when EMA is off)
  augment: AugmentState
  rng: jax.Array  # base PRNG key (raw uint32[2]); never advanced, only folded


def make_optimizer(config: ml_collections.ConfigDict, lr: float) -> optax.GradientTransformation:
  """Adam; lr and beta2 follow cosine schedules over images when the config sets them.

  A scheduled lr ends at `schedule.lr_end` for G; D's lr is scaled by the same factor.
  """
  o, batch = config.optimizer, config.batch_size
  lr_on, b2_on = schedules.is_scheduled(config, "lr"), schedules.is_scheduled(config, "b2")
  if not (lr_on or b2_on):
    return optax.adam(lr, b1=o.b1, b2=o.b2)
  # Schedules see the update count; count * batch is the images this network trained on.
  lr_at = lambda n: lr * schedules.factor(config, "lr", o.g_lr, n * batch)
  b2_at = lambda n: schedules.value(config, "b2", o.b2, n * batch)
  return optax.inject_hyperparams(optax.adam)(learning_rate=lr_at, b1=o.b1, b2=b2_at)


def make_optimizers(config: ml_collections.ConfigDict):
  """(generator, critic) optimizers."""
  return make_optimizer(config, config.optimizer.g_lr), make_optimizer(config,
                                                                       config.optimizer.d_lr)


def sample_latent(rng, batch: int, latent_dim: int, dist: str):
  """z ~ N(0, 1) or U(-1, 1) (the notebook's WGAN-GP), float32 [batch, dim]."""
  if dist == "uniform":
    return jax.random.uniform(rng, (batch, latent_dim), minval=-1.0, maxval=1.0)
  return jax.random.normal(rng, (batch, latent_dim))


def _init_net(module: nn.Module, tx, key, inputs, labels) -> NetState:
  variables = dict(models.init_variables(module, key, inputs, labels))
  params = variables.pop("params")
  return NetState(params=params, state=variables, opt_state=tx.init(params))


def create_train_state(config: ml_collections.ConfigDict, generator: nn.Module,
                       critic: nn.Module) -> TrainState:
  """Initialises parameters and optimizer states from `config.seed`.

  Jitted: run op by op, the initialisers compile ~250 tiny programs (20 s on
  2 cores for the smallest test network); as one program, about half that.
  """
  return jax.jit(functools.partial(_fresh_state, config, generator, critic))()


def _fresh_state(config, generator, critic) -> TrainState:
  rng = jax.random.PRNGKey(config.seed)
  g_key, d_key = jax.random.split(jax.random.fold_in(rng, 2**31 - 1))  # apart from step keys
  size = config.data.image_size
  labels = jnp.zeros((2,), jnp.int32)
  g_tx, d_tx = make_optimizers(config)
  g = _init_net(generator, g_tx, g_key, jnp.zeros((2, config.model.latent_dim)), labels)
  d = _init_net(critic, d_tx, d_key, jnp.zeros((2, size, size, 3)), labels)
  return TrainState(
      step=jnp.zeros((), jnp.int32), generator=g, critic=d,
      # A copy, not an alias: the jitted step donates every buffer once.
      ema_params=jax.tree_util.tree_map(jnp.copy, g.params),
      # Distinct buffers: the jitted step donates each one once.
      augment=AugmentState(p=jnp.asarray(config.augment.p, jnp.float32),
                           sign_sum=jnp.zeros((), jnp.float32), count=jnp.zeros((), jnp.float32)),
      rng=rng)


def images_from_indices(dataset_u8, indices, flips):
  """On-device batch: gather uint8 images, flip, scale to [-1, 1] float32."""
  images = visualize.from_uint8(dataset_u8[indices])
  flipped = jnp.flip(images, axis=-2)
  return jnp.where(flips[..., None, None, None], flipped, images)


def augment_fn(config: ml_collections.ConfigDict) -> Callable:
  """(images, key, p) -> images: DiffAugment and/or ADA, as the config says."""
  policy = config.augment.policy
  ada_ops = ada.validate_ops(config.augment.ada_ops) if config.augment.ada_ops else ()

  def apply(x, key, p):
    k_diff, k_ada = jax.random.split(key)
    if policy:
      x = augment.diff_augment(x, policy, k_diff)
    if ada_ops:
      x = ada.augment(x, p, k_ada, ops=ada_ops)
    return x
  return apply


def update_augment(config, aug: AugmentState, real_scores, images_seen) -> AugmentState:
  """ADA: every `ada_interval` iterations move p by sign(r_t - target); or p's schedule."""
  a = config.augment
  if schedules.is_scheduled(config, "aug_p"):
    return aug.replace(p=schedules.value(config, "aug_p", a.p, images_seen))
  if not a.ada_target:
    return aug
  sign_sum = aug.sign_sum + jnp.sum(jnp.sign(real_scores))
  count = aug.count + real_scores.size
  due = count >= a.ada_interval * config.batch_size * config.n_critic
  # Each iteration shows the critic batch_size * n_critic real images.
  p = ada.update_p(aug.p, sign_sum / jnp.maximum(count, 1.0), target=a.ada_target,
                   batch_size=config.batch_size * config.n_critic, interval=a.ada_interval,
                   speed_kimg=a.ada_kimg)
  return AugmentState(p=jnp.where(due, p, aug.p), sign_sum=jnp.where(due, 0.0, sign_sum),
                      count=jnp.where(due, 0.0, count))


def _penalty_weights(config, images_seen) -> objectives.PenaltyWeights:
  # gamma_end is r1_weight's end value; r2_weight follows by the same factor.
  gamma = schedules.factor(config, "gamma", config.r1_weight, images_seen)
  return objectives.PenaltyWeights(gp=jnp.asarray(config.gp_weight, jnp.float32),
                                   r1=config.r1_weight * gamma, r2=config.r2_weight * gamma)


@dataclasses.dataclass(frozen=True)
class _Nets:
  """What the step's pieces share: the config, both modules, optimizers, augmentation."""
  config: ml_collections.ConfigDict
  generator: nn.Module
  critic: nn.Module
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  augment: Callable

  def run_critic(self, d_params, labels, p):
    """The objectives' `run_critic`: the critic at `d_params` on augmented images.

    Given a tuple of batches `x` and one key each (objectives.fused_scores):
    each batch augmented with its key exactly as in a pass of its own, then
    one critic pass over their concatenation, the scores split into a tuple.
    """
    def apply(x, d_state, drop_key, batch_labels, **kwargs):
      out, new = self.critic.apply({"params": d_params, **d_state}, x, batch_labels, train=True,
                                   mutable=list(d_state), rngs={"dropout": drop_key}, **kwargs)
      return out, {**d_state, **new}

    def run(x, d_state, key, **kwargs):
      if isinstance(x, tuple):
        keys = [jax.random.split(k) for k in key]
        images = jnp.concatenate([self.augment(v, k[0], p) for v, k in zip(x, keys)])
        out, d_state = apply(images, d_state, keys[0][1], jnp.concatenate([labels] * len(x)),
                             **kwargs)
        return tuple(jnp.split(out, len(x))), d_state
      aug_key, drop_key = jax.random.split(key)
      return apply(self.augment(x, aug_key, p), d_state, drop_key, labels, **kwargs)
    return run

  def generate(self, g: NetState, g_params, z, labels):
    out, new = self.generator.apply({"params": g_params, **g.state}, z, labels, train=True,
                                    mutable=list(g.state))
    return out, {**g.state, **new}

  def latent(self, key, batch: int):
    return sample_latent(key, batch, self.config.model.latent_dim, self.config.latent_dist)


def _update_fakes(nets: _Nets, g: NetState, key, labels):
  """A critic update's fakes: G on latents from the first half of the update's key."""
  k_z = jax.random.split(key)[0]
  return nets.generate(g, g.params, nets.latent(k_z, labels.shape[0]), labels)[0]


def _critic_update(nets: _Nets, d: NetState, inputs, g: NetState, p, weights, fake=None):
  """One critic update on one real batch (a `lax.scan` body); makes its fakes unless given."""
  real, labels, key, index = inputs
  k_obj = jax.random.split(key)[1]
  if fake is None:
    fake = _update_fakes(nets, g, key, labels)
  fake = jax.lax.stop_gradient(fake)

  def loss_fn(d_params):
    return objectives.critic_objective(nets.config, nets.run_critic(d_params, labels, p),
                                       d.state, real, fake, k_obj, index, weights)

  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
  updates, opt_state = nets.d_tx.update(grads, d.opt_state, d.params)
  d = NetState(optax.apply_updates(d.params, updates), aux["state"], opt_state)
  return d, _critic_metrics(loss, aux, grads)


def batched_fakes(nets: _Nets, g: NetState, critic_keys, labels):
  """The fakes of all n_critic critic updates, [n_critic, B, H, W, 3], in one generator pass.

  `config.batched_fakes`. G does not change during the critic updates, so
  their fakes can be made up front (`_update_fakes`, as each update would
  make them: the same latents), G vmapped over the n_critic
  batches, so that each keeps its own BatchNorm statistics (one batch of
  n_critic * B would pool them: another function) while XLA runs each conv
  once over n_critic * B images. G's state updates are dropped, as the loop's.
  """
  return jax.vmap(lambda key, labels_i: _update_fakes(nets, g, key, labels_i))(critic_keys, labels)


def _critic_update_given_fakes(nets: _Nets, d: NetState, inputs, g: NetState, p, weights):
  """`_critic_update` on (real, labels, key, index, fake): fakes made up front."""
  *inputs, fake = inputs
  return _critic_update(nets, d, tuple(inputs), g, p, weights, fake=fake)


def _generator_update(nets: _Nets, g: NetState, d: NetState, real, labels, key, p):
  """One generator update against the (just updated) critic."""
  k_z, k_obj = jax.random.split(key)
  z = nets.latent(k_z, real.shape[0])

  def loss_fn(g_params):
    fake, g_state = nets.generate(g, g_params, z, labels)
    loss, fake_out = objectives.generator_objective(
        nets.config, nets.run_critic(d.params, labels, p), d.state, fake, real, k_obj)
    return loss, (g_state, fake_out)

  (loss, (g_state, fake_out)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
  updates, opt_state = nets.g_tx.update(grads, g.opt_state, g.params)
  g = NetState(optax.apply_updates(g.params, updates), g_state, opt_state)
  return g, {"g_loss": loss, "g_fake": jnp.mean(fake_out), "g_grad_norm": optax.global_norm(grads)}


def shared_fakes_iteration(nets: _Nets, g: NetState, d: NetState, real, labels, z, key, p,
                           weights):
  """One critic and one G update from a single generator pass (`config.share_fakes`).

  FastGAN's official loop: the critic trains on G(z), then G follows the
  updated critic's gradient at the same G(z) through that pass's VJP, equal
  to a second forward pass of G at the same parameters and z (tested).
  """
  k_d, k_g = jax.random.split(key)
  fake, g_vjp, g_state = jax.vjp(lambda params: nets.generate(g, params, z, labels), g.params,
                                 has_aux=True)
  d, d_metrics = _critic_update(nets, d, (real, labels, k_d, 0), g, p, weights, fake=fake)

  def loss_fn(images):
    return objectives.generator_objective(nets.config, nets.run_critic(d.params, labels, p),
                                          d.state, images, real, k_g)

  (loss, fake_out), fake_grad = jax.value_and_grad(loss_fn, has_aux=True)(fake)
  (grads,) = g_vjp(fake_grad)
  updates, opt_state = nets.g_tx.update(grads, g.opt_state, g.params)
  g = NetState(optax.apply_updates(g.params, updates), g_state, opt_state)
  g_metrics = {"g_loss": loss, "g_fake": jnp.mean(fake_out),
               "g_grad_norm": optax.global_norm(grads)}
  return g, d, d_metrics, g_metrics


def make_train_step(config: ml_collections.ConfigDict, generator: nn.Module,
                    critic: nn.Module, unroll_critic: bool = False,
                    low_resolution: bool = False) -> Callable:
  """Returns `train_step(state, batch) -> (state, metrics)` (not yet jitted).

  `batch` holds `image` float [n_critic, B, H, W, 3] in [-1, 1] and `label`
  int [n_critic, B]; or, for on-device data, `index`/`flip` [n_critic, B] and
  the uint8 dataset under `dataset`. Each of the n_critic real batches feeds
  one critic update (as in the WGAN-GP paper); then the generator updates
  `n_generator` times. The critic updates run in a `lax.scan`;
  `unroll_critic` unrolls it (same results; for XLA's cost analysis, which
  counts a loop body once). Opt-in forms of the same iteration, fewer and
  larger ops for small nets on a CPU: `config.batched_fakes` makes every
  critic update's fakes up front in one G pass (`batched_fakes`),
  `config.fused_critic` scores real and fake in one critic pass
  (objectives.fused_scores), `config.share_fakes` (n_critic 1) reuses the
  critic's G pass for the G update (`shared_fakes_iteration`).

  With `config.grow.size`, `low_resolution` gives the first phase's
  iteration (G's low-resolution head only, reals pooled to match);
  otherwise the full one fades G and reals by alpha(step) (gemgan.growing).
  """
  if low_resolution:
    generator = generator.clone(low_only=True)
  nets = _Nets(config, generator, critic, *make_optimizers(config), augment_fn(config))

  def train_step(state: TrainState, batch):
    state, images = _grown(config, state, _batch_images(batch), low_resolution)
    labels = batch["label"]
    n_critic, batch_size = labels.shape
    key = jax.random.fold_in(state.rng, state.step)
    images_seen = state.step.astype(jnp.float32) * batch_size  # before this step, as ADA
    p = state.augment.p
    if config.share_fakes:
      return _shared_step(nets, state, images[0], labels[0], key, p, images_seen)
    critic_keys = jax.random.split(jax.random.fold_in(key, 0), n_critic)
    inputs, update = (images, labels, critic_keys, jnp.arange(n_critic)), _critic_update
    if config.batched_fakes:
      inputs += (batched_fakes(nets, state.generator, critic_keys, labels),)
      update = _critic_update_given_fakes
    d, d_metrics = jax.lax.scan(
        functools.partial(update, nets, g=state.generator, p=p,
                          weights=_penalty_weights(config, images_seen)),
        state.critic, inputs, unroll=unroll_critic)
    real_scores = d_metrics.pop("real_scores")
    d_metrics = jax.tree_util.tree_map(jnp.mean, d_metrics)
    g = state.generator
    for i in range(config.n_generator):  # usually 1; the notebook's WGAN-GP did 2
      g, g_metrics = _generator_update(nets, g, d, images[-1], labels[-1],
                                       jax.random.fold_in(key, 1 + i), p)
    aug = update_augment(config, state.augment, real_scores, images_seen)
    new_state = state.replace(step=state.step + 1, generator=g, critic=d, augment=aug,
                              ema_params=_ema(config, state.ema_params, g.params, images_seen))
    return new_state, {**d_metrics, **g_metrics, "augment_p": aug.p}

  return train_step


def _shared_step(nets: _Nets, state: TrainState, real, labels, key, p, images_seen):
  """`train_step` with `config.share_fakes`: one G pass for both updates."""
  z = nets.latent(jax.random.fold_in(key, 1), real.shape[0])
  g, d, d_metrics, g_metrics = shared_fakes_iteration(
      nets, state.generator, state.critic, real, labels, z, jax.random.fold_in(key, 0), p,
      _penalty_weights(nets.config, images_seen))
  real_scores = d_metrics.pop("real_scores")
  aug = update_augment(nets.config, state.augment, real_scores, images_seen)
  new_state = state.replace(step=state.step + 1, generator=g, critic=d, augment=aug,
                            ema_params=_ema(nets.config, state.ema_params, g.params, images_seen))
  return new_state, {**d_metrics, **g_metrics, "augment_p": aug.p}


def _grown(config, state: TrainState, images, low_resolution: bool):
  """(state, reals) at this step's alpha: G's `grow` collection set, reals faded to match."""
  if not config.grow.size or low_resolution:
    return state, growing.reals(config, images)
  alpha = growing.alpha(config, state.step)
  g_state = {**state.generator.state, growing.COLLECTION: {"alpha": alpha}}
  return (state.replace(generator=state.generator.replace(state=g_state)),
          growing.reals(config, images, alpha))


def _batch_images(batch):
  if "index" in batch:
    return images_from_indices(batch["dataset"], batch["index"], batch["flip"])
  return batch["image"].astype(jnp.float32)


def _ema(config, ema_params, params, images_seen):
  if not config.ema.enabled:
    return params
  halflife = schedules.value(config, "ema_halflife_kimg", config.ema.halflife_kimg, images_seen)
  decay = ema_lib.ema_decay(halflife, config.batch_size, images_seen, config.ema.rampup)
  return ema_lib.update_ema(ema_params, params, decay)


def _critic_metrics(loss, aux, grads):
  real_out, fake_out = aux["real_out"], aux["fake_out"]
  return {
      "d_loss": loss, "gradient_penalty": aux["gp"], "r1_penalty": aux["r1"],
      "r2_penalty": aux["r2"], "recon_loss": aux["recon"], "d_real": jnp.mean(real_out), "d_fake": jnp.mean(fake_out),
      "wasserstein": jnp.mean(real_out) - jnp.mean(fake_out),
      "overfit_rt": monitors.overfit_rt(real_out), "d_grad_norm": optax.global_norm(grads),
      "real_scores": real_out,
  }
