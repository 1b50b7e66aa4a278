"""GAN losses as pure functions of critic outputs (logits / scores).

Every loss takes raw critic outputs, never probabilities: the BCE losses use
log-sigmoid identities, so there is no sigmoid-then-log to underflow.
Conventions: `d_loss(real, fake)` is minimised by the critic and
`g_loss(fake)` by the generator.
"""
from typing import Callable

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


# name -> (critic loss, generator loss)
LOSSES = {
    "nonsaturating": (nonsaturating_d_loss, nonsaturating_g_loss),
    "minimax": (nonsaturating_d_loss, minimax_g_loss),
    "wasserstein": (wasserstein_d_loss, wasserstein_g_loss),
    "hinge": (hinge_d_loss, wasserstein_g_loss),
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


def r1_penalty(critic_fn: Callable, real):
  """R1 (Mescheder et al. 2018): mean_i ||grad_x critic_fn(x_i)||^2 on real data.

  Multiply by gamma / 2 to get the paper's regulariser.
  """
  grads = _per_sample_input_grads(critic_fn, real.astype(jnp.float32))
  return jnp.mean(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1))
