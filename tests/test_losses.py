"""Losses on hand-computed cases; the gradient penalty against independent math."""
import jax
import jax.numpy as jnp
import numpy as np

from gemgan import losses


def test_bce_losses_hand_computed():
  zero = jnp.zeros(4)
  np.testing.assert_allclose(losses.nonsaturating_d_loss(zero, zero), 2 * np.log(2), rtol=1e-6)
  np.testing.assert_allclose(losses.nonsaturating_g_loss(zero), np.log(2), rtol=1e-6)
  np.testing.assert_allclose(losses.minimax_g_loss(zero), -np.log(2), rtol=1e-6)
  real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0])
  sig = lambda v: 1 / (1 + np.exp(-np.asarray(v)))
  expected = -np.mean(np.log(sig(real))) - np.mean(np.log(1 - sig(fake)))
  np.testing.assert_allclose(losses.nonsaturating_d_loss(real, fake), expected, rtol=1e-6)


def test_bce_losses_stable_for_extreme_logits():
  big = jnp.array([1e4, -1e4])
  for v in (losses.nonsaturating_d_loss(big, big), losses.nonsaturating_g_loss(big),
            jax.grad(lambda x: losses.nonsaturating_g_loss(x))(big)):
    assert np.all(np.isfinite(v))
  # A confidently wrong discriminator pays linearly, not log(0).
  np.testing.assert_allclose(losses.nonsaturating_g_loss(jnp.array([-1e4])), 1e4, rtol=1e-6)


def test_wasserstein_and_hinge():
  real, fake = jnp.array([1.0, 3.0]), jnp.array([-2.0, 0.5])
  np.testing.assert_allclose(losses.wasserstein_d_loss(real, fake), -0.75 - 2.0)
  np.testing.assert_allclose(losses.wasserstein_g_loss(fake), 0.75)
  # relu(1-1)=0, relu(1-3)=0; relu(1-2)=0, relu(1+0.5)=1.5 -> 0 + 0.75
  np.testing.assert_allclose(losses.hinge_d_loss(real, fake), 0.75)


def test_gradient_penalty_linear_critic_closed_form():
  w = jax.random.normal(jax.random.PRNGKey(0), (4, 4, 3))
  critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
  real = jax.random.normal(jax.random.PRNGKey(1), (5, 4, 4, 3))
  fake = jax.random.normal(jax.random.PRNGKey(2), (5, 4, 4, 3))
  alpha = jnp.linspace(0, 1, 5)
  expected = (np.linalg.norm(np.asarray(w)) - 1.0) ** 2  # grad is w everywhere
  np.testing.assert_allclose(losses.gradient_penalty(critic, real, fake, alpha), expected,
                             rtol=1e-5)


def test_gradient_penalty_quadratic_critic_uses_alpha():
  # f(x) = 0.5 ||x||^2 -> grad = x_hat = a*real + (1-a)*fake
  critic = lambda x: 0.5 * jnp.sum(x**2, axis=(1, 2, 3))
  real = np.random.RandomState(0).randn(3, 2, 2, 1).astype(np.float32)
  fake = np.random.RandomState(1).randn(3, 2, 2, 1).astype(np.float32)
  alpha = np.array([0.0, 0.3, 1.0], np.float32)
  x_hat = alpha[:, None, None, None] * real + (1 - alpha[:, None, None, None]) * fake
  norms = np.linalg.norm(x_hat.reshape(3, -1), axis=1)
  np.testing.assert_allclose(losses.gradient_penalty(critic, real, fake, alpha),
                             np.mean((norms - 1) ** 2), rtol=1e-5)


def test_gradient_penalty_matches_per_sample_vmap_on_a_conv_critic():
  k = jax.random.normal(jax.random.PRNGKey(3), (3, 3, 3, 4)) * 0.3

  def single(x):  # one image [H, W, C] -> score
    h = jax.lax.conv_general_dilated(x[None], k, (2, 2), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.sum(jnp.tanh(h) ** 2)

  critic = jax.vmap(single)
  real = jax.random.normal(jax.random.PRNGKey(4), (4, 8, 8, 3))
  fake = jax.random.normal(jax.random.PRNGKey(5), (4, 8, 8, 3))
  alpha = jax.random.uniform(jax.random.PRNGKey(6), (4,))
  x_hat = alpha[:, None, None, None] * real + (1 - alpha[:, None, None, None]) * fake
  per_sample = jax.vmap(jax.grad(single))(x_hat)
  expected = jnp.mean((jnp.sqrt(jnp.sum(per_sample**2, axis=(1, 2, 3))) - 1) ** 2)
  np.testing.assert_allclose(losses.gradient_penalty(critic, real, fake, alpha), expected,
                             rtol=1e-5)
  # And it is differentiable w.r.t. the critic's parameters (second order).
  g = jax.grad(lambda s: losses.gradient_penalty(
      lambda x: s * critic(x), real, fake, alpha))(1.5)
  assert np.isfinite(g) and g != 0


def test_r1_penalty_quadratic():
  critic = lambda x: 0.5 * jnp.sum(x**2, axis=(1, 2, 3))
  real = np.random.RandomState(2).randn(4, 2, 2, 3).astype(np.float32)
  np.testing.assert_allclose(losses.r1_penalty(critic, real),
                             np.mean(np.sum(real.reshape(4, -1) ** 2, axis=1)), rtol=1e-5)


def test_rpgan_losses_closed_form_and_mirror():
  real, fake = jnp.array([2.0, -1.0, 0.5]), jnp.array([0.0, 1.0, 0.5])
  diff = np.asarray(real) - np.asarray(fake)
  np.testing.assert_allclose(losses.rpgan_d_loss(real, fake),
                             np.mean(np.log1p(np.exp(-diff))), rtol=1e-6)
  np.testing.assert_allclose(losses.rpgan_g_loss(fake, real),
                             np.mean(np.log1p(np.exp(diff))), rtol=1e-6)
  # Only the pairwise difference matters (relativistic): a shift changes nothing.
  np.testing.assert_allclose(losses.rpgan_d_loss(real + 7.0, fake + 7.0),
                             losses.rpgan_d_loss(real, fake), rtol=1e-6)
  np.testing.assert_allclose(losses.rpgan_d_loss(jnp.zeros(2), jnp.zeros(2)), np.log(2))


def test_scores_and_penalty_equals_separate_forward_and_r1():
  w = jax.random.normal(jax.random.PRNGKey(3), (2, 2, 3))
  critic = lambda x: jnp.sum(jnp.tanh(x * w), axis=(1, 2, 3))
  x = jax.random.normal(jax.random.PRNGKey(4), (4, 2, 2, 3))
  scores, aux, pen = losses.scores_and_penalty(lambda v: (critic(v), "state"), x)
  assert aux == "state"
  np.testing.assert_allclose(scores, critic(x), rtol=1e-6)
  # Independent: d/dx sum tanh(w x) = w (1 - tanh^2), per sample.
  grads = np.asarray(w) * (1 - np.tanh(np.asarray(x) * np.asarray(w)) ** 2)
  np.testing.assert_allclose(pen, np.mean(np.sum(grads.reshape(4, -1) ** 2, axis=1)),
                             rtol=1e-5)
  np.testing.assert_allclose(pen, losses.r1_penalty(critic, x), rtol=1e-6)
