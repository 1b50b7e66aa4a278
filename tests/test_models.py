"""Model shapes, parameter counts against the notebook, and label plumbing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import dcgan as dcgan_config
from configs import wgan_gp as wgan_config
from gemgan import models


def _init(config, num_classes=0, batch=2):
  g, d = models.build_models(config, num_classes=num_classes)
  size, latent = config.data.image_size, config.model.latent_dim
  labels = jnp.arange(batch, dtype=jnp.int32) % max(num_classes, 1)
  gv = models.init_variables(g, jax.random.PRNGKey(0), jnp.zeros((batch, latent)), labels)
  dv = models.init_variables(d, jax.random.PRNGKey(1), jnp.zeros((batch, size, size, 3)), labels)
  return g, d, gv, dv


def test_dcgan_seed_parameter_counts_match_notebook():
  # Hand-counted from the notebook's Paddle layers (conv weights + BN scale/bias).
  _, _, gv, dv = _init(dcgan_config.get_config("seed"))
  assert models.count_params(gv["params"]) == 4_600_704
  assert models.count_params(dv["params"]) == 2_775_808


def test_wgan_gp_seed_parameter_counts_match_notebook():
  # G: 100->512 k6, 512->256->128->64->3 k5, all with bias, BN after each
  # (also before tanh). D: 3->64->128->256->512 k5 with bias and BN, fc 512->1.
  g_expected = (100 * 512 * 36 + 512 + 512 * 256 * 25 + 256 + 256 * 128 * 25 + 128
                + 128 * 64 * 25 + 64 + 64 * 3 * 25 + 3 + 2 * (512 + 256 + 128 + 64 + 3))
  d_expected = (3 * 64 * 25 + 64 + 64 * 128 * 25 + 128 + 128 * 256 * 25 + 256
                + 256 * 512 * 25 + 512 + 2 * (64 + 128 + 256 + 512) + 512 + 1)
  _, _, gv, dv = _init(wgan_config.get_config("seed"))
  assert models.count_params(gv["params"]) == g_expected == 6_151_689
  assert models.count_params(dv["params"]) == d_expected == 4_308_993
  assert "batch_stats" in dv  # the notebook's (flawed) BatchNorm critic


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp"])
@pytest.mark.parametrize("size", [16, 32, 64])
def test_output_shapes_and_range(name, size):
  c = (dcgan_config if name == "dcgan" else wgan_config).get_config()
  c.data.image_size, c.model.width = size, 4
  g, d, gv, dv = _init(c, batch=3)
  z = jax.random.normal(jax.random.PRNGKey(2), (3, c.model.latent_dim))
  images = g.apply(gv, z, None, train=False)
  assert images.shape == (3, size, size, 3)
  assert float(jnp.max(jnp.abs(images))) <= 1.0
  assert d.apply(dv, images, None, train=False).shape == (3,)


@pytest.mark.parametrize("norm", ["none", "layer", "spectral"])
def test_default_critics_score_each_sample_independently(norm):
  # What makes a per-sample gradient penalty valid: no batch coupling.
  c = wgan_config.get_config()
  c.data.image_size, c.model.width, c.model.critic_norm = 16, 4, norm
  _, d, _, dv = _init(c, batch=4)
  x = jax.random.normal(jax.random.PRNGKey(3), (4, 16, 16, 3))
  y = x.at[1:].set(jax.random.normal(jax.random.PRNGKey(4), (3, 16, 16, 3)))
  fx = d.apply(dv, x, None, train=False)
  fy = d.apply(dv, y, None, train=False)
  np.testing.assert_allclose(fx[0], fy[0], rtol=1e-6)
  assert not np.allclose(fx[1:], fy[1:])


def test_conditional_labels_change_outputs_and_soft_labels_match():
  c = wgan_config.get_config()
  c.data.image_size, c.model.width, c.model.conditional = 16, 4, True
  g, d, gv, dv = _init(c, num_classes=5, batch=2)
  # Embeddings start as identity/zero; perturb them so classes differ.
  gv = jax.tree_util.tree_map(
      lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(5), p.shape), gv)
  z = jnp.ones((2, c.model.latent_dim))
  a = g.apply(gv, z, jnp.array([0, 0]), train=False)
  b = g.apply(gv, z, jnp.array([0, 3]), train=False)
  np.testing.assert_allclose(a[0], b[0], atol=1e-6)
  assert not np.allclose(a[1], b[1])
  soft = g.apply(gv, z, jax.nn.one_hot(jnp.array([0, 3]), 5), train=False)
  np.testing.assert_allclose(soft, b, atol=1e-5)
  x = jax.random.normal(jax.random.PRNGKey(6), (2, 16, 16, 3))
  assert not np.allclose(d.apply(dv, x, jnp.array([1, 1]), train=False),
                         d.apply(dv, x, jnp.array([2, 2]), train=False))
