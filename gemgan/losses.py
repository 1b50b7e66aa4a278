"""GAN losses as pure functions of critic outputs (logits / scores).

Every loss takes raw critic outputs, never probabilities: the BCE losses use
log-sigmoid identities, so there is no sigmoid-then-log to underflow.
Conventions: `d_loss(real, fake)` is minimised by the critic and
`g_loss(fake)` by the generator.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


def nonsaturating_d_loss(real_logits, fake_logits):
  """-log D(x) - log(1 - D(G(z))): BCE with labels 1 for real, 0 for fake."""
  return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def nonsaturating_g_loss(fake_logits):
  """-log D(G(z)) (Goodfellow et al.'s non-saturating generator loss)."""
  return jnp.mean(jax.nn.softplus(-fake_logits))


def minimax_g_loss(fake_logits):
  """log(1 - D(G(z))): the original minimax generator loss (saturates)."""
  return -jnp.mean(jax.nn.softplus(fake_logits))


def wasserstein_d_loss(real_scores, fake_scores):
  """E[D(G(z))] - E[D(x)]: the negated Wasserstein estimate."""
  return jnp.mean(fake_scores) - jnp.mean(real_scores)


def wasserstein_g_loss(fake_scores):
  """-E[D(G(z))]."""
  return -jnp.mean(fake_scores)


def hinge_d_loss(real_scores, fake_scores):
  """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye; Miyato et al.)."""
  return jnp.mean(jax.nn.relu(1.0 - real_scores)) + jnp.mean(jax.nn.relu(1.0 + fake_scores))


def rpgan_d_loss(real_logits, fake_logits):
  """softplus(-(D(x) - D(G(z)))): the relativistic pairing loss (Jolicoeur-Martineau 2018).

  R3GAN's critic loss: each real sample is paired with one fake sample, so the
  critic is asked to rank, not to classify; with R1 + R2 it converges locally
  (Huang et al. 2024).
  """
  return jnp.mean(jax.nn.softplus(fake_logits - real_logits))


def rpgan_g_loss(fake_logits, real_logits):
  """softplus(-(D(G(z)) - D(x))): the mirror of `rpgan_d_loss` (real scores held fixed)."""
  return jnp.mean(jax.nn.softplus(real_logits - fake_logits))


class Loss(NamedTuple):
  """A critic loss d(real, fake), its generator loss g(fake[, real]), and the
  traits the training loop reads instead of checking the loss's name."""
  d: Callable
  g: Callable
  relativistic: bool = False  # g also takes the critic's scores on real data
  # The critic's score 0 is where it is undecided (BCE's logit, hinge's
  # margin centre), so ADA's r_t = E[sign(D(real))] measures overfitting.
  # A Wasserstein critic's scores have a free offset: r_t says nothing there.
  zero_is_boundary: bool = True


LOSSES = {
    "nonsaturating": Loss(nonsaturating_d_loss, nonsaturating_g_loss),
    "minimax": Loss(nonsaturating_d_loss, minimax_g_loss),
    "wasserstein": Loss(wasserstein_d_loss, wasserstein_g_loss, zero_is_boundary=False),
    "hinge": Loss(hinge_d_loss, wasserstein_g_loss),
    "rpgan": Loss(rpgan_d_loss, rpgan_g_loss, relativistic=True),
}


def _per_sample_input_grads(critic_fn: Callable, x):
  """d critic_fn(x)[i] / d x[i] for every i, one backward pass.

  Summing the outputs is exact only when sample i's score depends on x[i]
  alone (no batch statistics); critics used with penalties must be such.
  """
  return jax.grad(lambda v: jnp.sum(critic_fn(v)))(x)


def gradient_penalty(critic_fn: Callable, real, fake, alpha):
  """WGAN-GP penalty: mean_i (||grad_x critic_fn(x_hat_i)||_2 - 1)^2.

  Args:
    critic_fn: images [B, ...] -> scores [B]; per-sample (no batch coupling).
    real, fake: images [B, ...].
    alpha: [B] mixing weights in [0, 1] chosen by the caller.

  x_hat = alpha * real + (1 - alpha) * fake. The penalty is computed in
  float32 whatever the inputs' dtype.
  """
  real = real.astype(jnp.float32)
  fake = fake.astype(jnp.float32)
  a = alpha.astype(jnp.float32).reshape((-1,) + (1,) * (real.ndim - 1))
  x_hat = a * real + (1.0 - a) * fake
  grads = _per_sample_input_grads(critic_fn, x_hat).astype(jnp.float32)
  # Differentiable at zero gradient (plain sqrt is not); exact elsewhere.
  sq = jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1)
  norm = jnp.sqrt(jnp.maximum(sq, 1e-12))
  return jnp.mean(jnp.square(norm - 1.0))


def scores_and_penalty(critic_fn: Callable, x):
  """(critic_fn(x), aux, mean_i ||grad_x critic_fn(x)_i||^2) from one forward pass.

  `critic_fn(x) -> (scores [B], aux)`. R1 at real data and R2 at fakes
  (R3GAN: both every step) then cost one extra backward pass instead of a
  second forward pass; the same per-sample condition as `r1_penalty` holds.
  """
  x = x.astype(jnp.float32)
  scores, vjp, aux = jax.vjp(critic_fn, x, has_aux=True)
  (grads,) = vjp(jnp.ones_like(scores))
  sq = jnp.sum(jnp.square(grads.astype(jnp.float32).reshape(grads.shape[0], -1)), axis=-1)
  return scores, aux, jnp.mean(sq)


def r1_penalty(critic_fn: Callable, real):
  """R1 (Mescheder et al. 2018): mean_i ||grad_x critic_fn(x_i)||^2 on real data.

  Multiply by gamma / 2 to get the paper's regulariser.
  """
  grads = _per_sample_input_grads(critic_fn, real.astype(jnp.float32))
  return jnp.mean(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1))
