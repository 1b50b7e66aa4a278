"""Critic and generator objectives: pure functions of the networks' outputs.

Held apart from the loop (as StyleGAN2-ADA's training/loss.py) so that a new
loss or penalty is a change here and in the config, not in `steps.py`.
`run_critic(x, state, key) -> (scores, new_state)` is the critic at fixed
parameters with the run's augmentation inside (the key fixes its draw). Given
a tuple of batches and a tuple of as many keys, it augments each batch with
its own key, runs the critic once on their concatenation and returns a tuple
of scores (`config.fused_critic`).
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from gemgan import losses

Zero = lambda: jnp.zeros((), jnp.float32)


class PenaltyWeights(NamedTuple):
  """This step's penalty weights (traced: gamma may follow a schedule)."""
  gp: jax.Array
  r1: jax.Array  # gamma: R1 and R2 enter as gamma / 2 * penalty (Mescheder et al.)
  r2: jax.Array


def _scores(run_critic, x, state, key, with_penalty: bool):
  """Scores, new state and (optionally) the zero-centred gradient penalty at x."""
  if with_penalty:
    return losses.scores_and_penalty(lambda v: run_critic(v, state, key), x)
  scores, state = run_critic(x, state, key)
  return scores, state, Zero()


def critic_objective(config: ml_collections.ConfigDict, run_critic: Callable, state, real,
                     fake, key, index, weights: PenaltyWeights):
  """(loss, aux) for one critic update on a real and a fake batch.

  R1 every step and R2 are taken through the same (augmented) forward passes
  as the loss, gradients w.r.t. the unaugmented images, as R3GAN does. Lazy R1
  (`r1_every` > 1, StyleGAN2's) and the WGAN-GP penalty use an extra pass
  whose state updates are discarded, so they never count as BatchNorm/SN steps.
  With `model.recon_weight` (FastGAN) the real pass also returns the critic's
  reconstruction loss (Liu et al. 2021, Sec. 3.2), added with that weight.
  With `fused_critic` the loss's two passes are one (`fused_scores`).
  """
  loss_fns = losses.LOSSES[config.loss]
  k_real, k_fake, k_pen, k_alpha = jax.random.split(key, 4)
  lazy_r1 = config.r1_weight > 0 and config.r1_every > 1
  recon_weight = config.model.get("recon_weight", 0.0)
  if config.fused_critic:
    real_out, fake_out, state = fused_scores(run_critic, real, fake, state, k_real, k_fake)
    r1 = r2 = recon = Zero()
  else:
    real_out, fake_out, state, r1, r2, recon = _two_passes(
        run_critic, real, fake, state, k_real, k_fake, r1=config.r1_weight > 0 and not lazy_r1,
        r2=config.r2_weight > 0, reconstruct=bool(recon_weight))
  loss = loss_fns.d(real_out, fake_out)
  critic_fn = lambda x: run_critic(x, state, k_pen)[0]
  gp = Zero()
  if config.gp_weight:
    alpha = jax.random.uniform(k_alpha, (real.shape[0],))
    gp = losses.gradient_penalty(critic_fn, real, fake, alpha)
    loss = loss + weights.gp * gp
  if lazy_r1:
    # Every r1_every-th critic update, scaled up to compensate.
    r1 = jax.lax.cond(index % config.r1_every == 0, lambda: losses.r1_penalty(critic_fn, real),
                      Zero)
  loss = loss + 0.5 * weights.r1 * config.r1_every * r1 + 0.5 * weights.r2 * r2
  loss = loss + recon_weight * recon
  return loss, dict(state=state, real_out=real_out, fake_out=fake_out, gp=gp, r1=r1, r2=r2,
                    recon=recon)


def _two_passes(run_critic, real, fake, state, k_real, k_fake, *, r1: bool, r2: bool,
                reconstruct: bool):
  """(real scores, fake scores, state, r1, r2, recon): one critic pass each, real first.

  `r1` (every step) and `r2` come from these passes' own input gradients;
  with `reconstruct` (FastGAN) the real pass also returns the critic's
  reconstruction loss (Liu et al. 2021, Sec. 3.2).
  """
  recon = r1_penalty = Zero()
  if reconstruct:
    (real_out, recon), state = run_critic(real, state, k_real, reconstruct=True)
  else:
    real_out, state, r1_penalty = _scores(run_critic, real, state, k_real, r1)
  fake_out, state, r2_penalty = _scores(run_critic, fake, state, k_fake, r2)
  return real_out, fake_out, state, r1_penalty, r2_penalty, recon


def fused_scores(run_critic, real, fake, state, k_real, k_fake):
  """(real scores, fake scores, state) from one critic pass over concat(real, fake).

  BigGAN-PyTorch's G_D (BigGAN.py: `D(torch.cat([G_z, x], 0))`, then
  `torch.split`): one pass of 2B images instead of two of B, fewer and larger
  ops, which is what counts for narrow nets on a CPU. Each half keeps its own
  augmentation key, so the images the critic sees are the two passes' own.
  The same function as two passes wherever each score depends on its sample
  alone (config_lib refuses BatchNorm, dropout, R1 every step, R2 and FastGAN);
  with spectral norm the power iteration then runs once per critic update
  instead of twice, and both halves see the sigma of that one iteration
  (the two-pass form gives the fake pass the sigma of a second one).
  """
  (real_out, fake_out), state = run_critic((real, fake), state, (k_real, k_fake))
  return real_out, fake_out, state


def generator_objective(config: ml_collections.ConfigDict, run_critic: Callable, d_state,
                        fake, real, key):
  """(loss, fake scores) for one generator update; the critic's state updates are dropped.

  Relativistic losses compare with the critic's scores on `real`, held fixed.
  """
  loss_fns = losses.LOSSES[config.loss]
  k_fake, k_real = jax.random.split(key)
  fake_out, _ = run_critic(fake, d_state, k_fake)
  if loss_fns.relativistic:
    real_out = jax.lax.stop_gradient(run_critic(real, d_state, k_real)[0])
    return loss_fns.g(fake_out, real_out), fake_out
  return loss_fns.g(fake_out), fake_out
