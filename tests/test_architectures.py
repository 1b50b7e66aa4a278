"""The ResNet and R3GAN families and the shared layers, against independent math."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import r3gan as r3gan_config
from configs import resnet as resnet_config
from gemgan import models
from gemgan.models import layers
from gemgan.models import r3gan
from tests.tiny import tiny_config


def _tiny(module, preset="", size=16, width=8):
  return tiny_config(module, preset, size, width)


def _init(c, num_classes=0, batch=2):
  g, d = models.build_models(c, num_classes=num_classes)
  labels = jnp.arange(batch) % max(num_classes, 1)
  gv = models.init_variables(g, jax.random.PRNGKey(0), jnp.zeros((batch, 8)), labels)
  size = c.data.image_size
  dv = models.init_variables(d, jax.random.PRNGKey(1), jnp.zeros((batch, size, size, 3)), labels)
  return g, d, gv, dv


@pytest.mark.parametrize("module", [resnet_config, r3gan_config])
@pytest.mark.parametrize("size", [32, 96])
def test_shapes_at_each_resolution(module, size):
  c = _tiny(module, size=size, width=4 if module is resnet_config else 8)
  g, d, gv, dv = _init(c, batch=2)
  images = g.apply(gv, jax.random.normal(jax.random.PRNGKey(2), (2, 8)), None, train=False)
  assert images.shape == (2, size, size, 3)
  assert d.apply(dv, images, None, train=False).shape == (2,)


def test_num_resamplings():
  assert [layers.num_resamplings(s) for s in (32, 64, 96, 128)] == [(4, 3), (4, 4), (6, 4),
                                                                   (4, 5)]


def test_lowpass_resampling_matches_numpy_filtering():
  x = np.random.RandomState(0).randn(1, 5, 4, 2).astype(np.float32)
  f = np.array([1.0, 2.0, 1.0])

  def filt_1d(v, axis, up):
    # Independent: zero insertion (up) then [1,2,1] (x2 gain per axis), or
    # [1,2,1]/4 then every second sample (down); zero padding.
    v = np.moveaxis(v, axis, -1)
    if up:
      z = np.zeros(v.shape[:-1] + (2 * v.shape[-1],), v.dtype)
      z[..., ::2] = v
      out = np.apply_along_axis(lambda r: np.convolve(r, f / 2, mode="same"), -1, z)
    else:
      out = np.apply_along_axis(lambda r: np.convolve(r, f / 4, mode="same"), -1, v)[..., ::2]
    return np.moveaxis(out, -1, axis)

  up = filt_1d(filt_1d(x, 1, True), 2, True)
  np.testing.assert_allclose(layers.lowpass_up2(jnp.asarray(x)), up, atol=1e-6)
  down = filt_1d(filt_1d(x, 1, False), 2, False)
  np.testing.assert_allclose(layers.lowpass_down2(jnp.asarray(x)), down, atol=1e-6)


def test_space_to_depth_matches_tensorflow():
  tf = pytest.importorskip("tensorflow")
  x = np.random.RandomState(0).randn(2, 6, 4, 3).astype(np.float32)
  np.testing.assert_array_equal(layers.space_to_depth2(jnp.asarray(x)),
                                tf.nn.space_to_depth(x, 2).numpy())


def test_space_to_depth_critic_is_the_half_size_critic_on_folded_pixels():
  c = _tiny(resnet_config, size=16, width=4)
  c.model.critic_stem, c.model.critic_width = "space_to_depth", 8
  _, d, _, dv = _init(c)
  first = dv["params"]["stage_0_block_0"]
  assert first["conv_0"]["kernel"].shape == (3, 3, 12, 8)  # 2x2 blocks of RGB, critic_width
  assert "stage_2_block_0" not in dv["params"]  # the 16 px critic's third stage: gone
  _, d_half, _, _ = _init(_tiny(resnet_config, size=8, width=8))
  x = jax.random.normal(jax.random.PRNGKey(3), (2, 16, 16, 3))
  np.testing.assert_allclose(d.apply(dv, x, None, train=False),
                             d_half.apply(dv, layers.space_to_depth2(x), None, train=False),
                             rtol=1e-6)


def test_generator_min_channels_widens_only_the_thin_stages():
  c = _tiny(resnet_config, size=16, width=2)  # stages at 8 and 16 px: 4 and 2 channels
  c.model.generator_min_channels = 3
  g, _, gv, _ = _init(c)
  p = gv["params"]
  assert p["dense"]["kernel"].shape[1] == 4 * 4 * 8  # 4x4 map of width * 4 = 8 > 3: kept
  assert p["stage_0_block_0"]["conv_1"]["kernel"].shape[-1] == 4  # 2 * 2 > 3: kept
  assert p["stage_1_block_0"]["conv_1"]["kernel"].shape[-1] == 3  # 2 -> the floor
  assert p["conv_out"]["kernel"].shape[2:] == (3, 3)
  z = jax.random.normal(jax.random.PRNGKey(2), (2, 8))
  assert g.apply(gv, z, None, train=False).shape == (2, 16, 16, 3)


def test_spectral_norm_divides_by_the_largest_singular_value():
  layer = nn.Dense(6, use_bias=False)
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 5))
  sn = layers.MaybeSpectral(layer, spectral=True)
  v = sn.init(jax.random.PRNGKey(1), x, train=False)
  for _ in range(30):  # power iteration converges; sigma is then exact
    _, updates = sn.apply(v, x, train=True, mutable=["batch_stats"])
    v = {**v, **updates}
  w = np.asarray(v["params"]["layer"]["kernel"])
  sigma = np.linalg.svd(w, compute_uv=False)[0]
  np.testing.assert_allclose(sn.apply(v, x, train=False), np.asarray(x) @ w / sigma, rtol=1e-4)


def test_projection_head_hand_computed():
  head = layers.ProjectionHead(num_classes=3)
  feats = jnp.array([[1.0, 2.0], [3.0, -1.0]])
  labels = jnp.array([2, 0])
  v = head.init(jax.random.PRNGKey(0), feats, labels)
  table = np.asarray(v["params"]["projection"])
  expected = [1 * table[2, 0] + 2 * table[2, 1], 3 * table[0, 0] - 1 * table[0, 1]]
  np.testing.assert_allclose(head.apply(v, feats, labels), expected, rtol=1e-6)


def test_r3gan_blocks_start_as_identity_and_init_is_scaled():
  block = r3gan.ResidualBlock(num_blocks=16, expansion=2, group_width=4)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 8))
  v = block.init(jax.random.PRNGKey(1), x)
  np.testing.assert_array_equal(block.apply(v, x), x)  # zero-initialised last conv
  w = np.asarray(v["params"]["expand"]["kernel"])  # fan_in 8
  expected_std = r3gan.LRELU_GAIN * 16**-0.25 / np.sqrt(8)
  assert abs(w.std() / expected_std - 1) < 0.15, (w.std(), expected_std)
  groups = v["params"]["grouped"]["kernel"].shape[2]  # HWIO: I = channels per group
  assert groups == 4


def test_resnet_conditional_uses_labels_in_both_networks():
  c = _tiny(resnet_config, "conditional", width=4)
  g, d, gv, dv = _init(c, num_classes=5)
  gv = jax.tree_util.tree_map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(5),
                                                                     p.shape), gv)
  z = jnp.ones((2, 8))
  a = g.apply(gv, z, jnp.array([0, 1]), train=False)
  b = g.apply(gv, z, jnp.array([0, 4]), train=False)
  np.testing.assert_allclose(a[0], b[0], atol=1e-6)
  assert not np.allclose(a[1], b[1])
  x = jax.random.normal(jax.random.PRNGKey(6), (2, 16, 16, 3))
  assert not np.allclose(d.apply(dv, x, jnp.array([1, 1]), train=False),
                         d.apply(dv, x, jnp.array([2, 2]), train=False))
