"""Growing the resolution (gemgan.growing): resampling, G's fade, the two iterations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import fastgan as fastgan_config
from configs import resnet as resnet_config
from gemgan import config_lib
from gemgan import growing
from gemgan import models
from gemgan import steps
from tests.test_steps import real_batch
from tests.tiny import tiny_config


def grown_config(**changes):
  """A 16 px ResNet that trains at 8 px for 2 iterations, then fades over 2."""
  c = tiny_config(resnet_config, "", n_critic=1)
  c.grow.size, c.grow.kimg, c.grow.fade_kimg = 8, 0.016, 0.016  # batch 8: 2 and 2 iterations
  c.update_from_flattened_dict(changes)
  return c


def test_low_resolution_pools_and_repeats_by_hand():
  x = np.random.RandomState(0).randn(2, 4, 4, 3).astype(np.float32)
  out = np.asarray(growing.low_resolution(jnp.asarray(x), 2))
  for i in range(2):
    for j in range(2):
      block = x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean(axis=(1, 2))
      for di in range(2):
        for dj in range(2):
          np.testing.assert_allclose(out[:, 2 * i + di, 2 * j + dj], block, rtol=1e-6)
  c = grown_config()
  full = jnp.asarray(np.random.RandomState(1).randn(1, 16, 16, 3), jnp.float32)
  low = growing.low_resolution(full, 8)
  np.testing.assert_array_equal(growing.reals(c, full), low)
  np.testing.assert_array_equal(growing.reals(c, full, jnp.float32(1)), full)
  np.testing.assert_allclose(growing.reals(c, full, 0.25), 0.75 * low + 0.25 * full, rtol=1e-6)


def test_bilinear_upsampling_matches_tensorflow():
  """grow.upsample="bilinear" against tf.image.resize (half-pixel centres, edges clamped)."""
  import tensorflow as tf
  x = np.random.RandomState(2).randn(2, 4, 5, 3).astype(np.float32)
  for factor in (2, 4):
    expected = tf.image.resize(x, (4 * factor, 5 * factor), "bilinear").numpy()
    np.testing.assert_allclose(growing.upsample(jnp.asarray(x), factor, "bilinear"), expected,
                               atol=1e-5)
  c = grown_config(**{"grow.upsample": "bilinear"})
  full = jnp.asarray(np.random.RandomState(1).randn(1, 16, 16, 3), jnp.float32)
  pooled = full.reshape(1, 8, 2, 8, 2, 3).mean(axis=(2, 4))
  np.testing.assert_allclose(growing.reals(c, full),
                             tf.image.resize(np.asarray(pooled), (16, 16), "bilinear"), atol=1e-5)
  g, _ = models.build_models(c)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 8))
  variables = g.init(jax.random.PRNGKey(1), z, None, train=False)
  low_logits = np.arctanh(np.asarray(g.clone(low_only=True, grow_upsample="nearest").apply(
      variables, z, None, train=False), np.float64))[:, ::2, ::2]
  expected = np.tanh(tf.image.resize(low_logits, (16, 16), "bilinear").numpy())
  np.testing.assert_allclose(g.apply(variables, z, None, train=False), expected, atol=1e-5)


def test_alpha_follows_the_schedule():
  c = grown_config()
  assert growing.first_full_step(c) == 2
  np.testing.assert_allclose([growing.alpha(c, s) for s in range(5)], [0, 0, 0.5, 1, 1])


def test_generator_adds_its_later_stages_to_the_upsampled_low_head():
  """G = tanh(up(low logits) + alpha * full-size logits); the full-size head starts at 0."""
  c = grown_config()
  g, _ = models.build_models(c)
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 8))
  variables = g.init(jax.random.PRNGKey(1), z, None, train=False)
  assert float(variables["grow"]["alpha"]) == 0.0
  apply = lambda module, a, params=variables["params"]: module.apply(
      {**variables, "params": params, "grow": {"alpha": jnp.float32(a)}}, z, None, train=False)
  low = apply(g.clone(low_only=True), 0.0)
  assert low.shape == (3, 16, 16, 3)
  np.testing.assert_array_equal(low[:, ::2, ::2], low[:, 1::2, 1::2])  # 8 px, repeated
  np.testing.assert_array_equal(apply(g, 0.0), low)
  np.testing.assert_array_equal(apply(g, 1.0), low)  # zero-initialised full-size head
  kernel = variables["params"]["conv_out"]["kernel"]
  params = {**variables["params"], "conv_out": {
      **variables["params"]["conv_out"],
      "kernel": 0.3 * jax.random.normal(jax.random.PRNGKey(2), kernel.shape)}}
  full_logits = np.arctanh(np.asarray(apply(g.clone(grow_size=0), 0.0, params), np.float64))
  for a in (0.25, 1.0):
    expected = np.tanh(np.arctanh(np.asarray(low, np.float64)) + a * full_logits)
    np.testing.assert_allclose(apply(g, a, params), expected, atol=1e-5)


def test_low_resolution_iteration_leaves_the_later_stages_alone():
  """G's 8 -> 16 px stage gets zero gradients, so Adam and the EMA leave it bit-exact.

  The full iteration's fade is in test_steps' recipe test (alpha 0.5, then 1).
  """
  c = grown_config()
  g, d = models.build_models(c)
  state = steps.create_train_state(c, g, d)
  low_step = jax.jit(steps.make_train_step(c, g, d, low_resolution=True))
  new, metrics = low_step(state, {k: jnp.asarray(v) for k, v in real_batch(c).items()})
  assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])
  assert float(new.generator.state["grow"]["alpha"]) == 0.0
  for params in (lambda s: s.generator.params, lambda s: s.ema_params):
    before, after = params(state), params(new)
    for a, b in zip(jax.tree_util.tree_leaves(before["stage_1_block_0"]),
                    jax.tree_util.tree_leaves(after["stage_1_block_0"])):
      np.testing.assert_array_equal(a, b)
    assert not np.allclose(before["stage_0_block_0"]["conv_0"]["kernel"],
                           after["stage_0_block_0"]["conv_0"]["kernel"])


@pytest.mark.parametrize("changes,key", [
    ({"grow.size": 12}, "grow.size"),  # not a stage of the 16 px G
    ({"grow.size": 16}, "grow.size"),  # the output itself
    ({"grow.kimg": 0.0}, "grow.kimg"),
    ({"grow.fade_kimg": -1.0}, "grow.fade_kimg"),
    ({"grow.upsample": "bicubic"}, "grow.upsample"),
])
def test_config_errors_name_the_key(changes, key):
  c = grown_config(**changes)
  with pytest.raises(config_lib.ConfigError, match=f"config.{key}:"):
    config_lib.validate(c)


def test_only_the_resnet_grows():
  c = tiny_config(fastgan_config, "", size=64)
  c.grow.size, c.grow.kimg = 32, 1.0
  with pytest.raises(config_lib.ConfigError, match="config.grow.size: only the ResNet"):
    config_lib.validate(c)
