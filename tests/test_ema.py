"""EMA schedule and update on hand-computed numbers."""
import jax
import jax.numpy as jnp
import numpy as np

from gemgan import ema


def test_decay_without_rampup_is_the_halflife():
  # Half-life 10 kimg, batch 64: 0.5 ** (64 / 10000).
  np.testing.assert_allclose(ema.ema_decay(10.0, 64, 123456.0, rampup=None),
                             0.5 ** 0.0064, rtol=1e-6)
  np.testing.assert_allclose(ema.ema_decay(10.0, 64, 0.0, rampup=0.0),
                             0.5 ** 0.0064, rtol=1e-6)
  # After exactly one half-life worth of steps the start weight counts half.
  beta = float(ema.ema_decay(1.0, 100, 0.0, rampup=None))
  np.testing.assert_allclose(beta ** 10, 0.5, rtol=1e-5)


def test_rampup_caps_the_halflife():
  # images_seen 6400, rampup 0.05 -> ema_nimg = min(10000, 320) = 320; 0.5 ** (64 / 320).
  np.testing.assert_allclose(ema.ema_decay(10.0, 64, 6400.0, rampup=0.05), 0.5 ** 0.2,
                             rtol=1e-6)
  # Past 200k images the cap (0.05 * 200k = 10k) no longer binds.
  np.testing.assert_allclose(ema.ema_decay(10.0, 64, 400_000.0, rampup=0.05),
                             0.5 ** 0.0064, rtol=1e-6)
  # At the start the average restarts from the current weights.
  assert float(ema.ema_decay(10.0, 64, 0.0, rampup=0.05)) == 0.0


def test_decay_is_jittable_in_images_seen():
  fn = jax.jit(lambda seen: ema.ema_decay(10.0, 64, seen, rampup=0.05))
  np.testing.assert_allclose(fn(jnp.float32(6400.0)), 0.5 ** 0.2, rtol=1e-6)


def test_update_ema_tree_arithmetic():
  ema_params = {"w": jnp.array([1.0, 2.0]), "b": {"c": jnp.array(10.0)}}
  params = {"w": jnp.array([3.0, -2.0]), "b": {"c": jnp.array(0.0)}}
  new = ema.update_ema(ema_params, params, 0.75)
  # 0.75 * ema + 0.25 * params
  np.testing.assert_allclose(new["w"], [1.5, 1.0])
  np.testing.assert_allclose(new["b"]["c"], 7.5)
  assert jax.tree.structure(new) == jax.tree.structure(ema_params)


def test_update_ema_endpoints_exact_and_dtype_kept():
  key1, key2 = jax.random.split(jax.random.PRNGKey(0))
  e = {"w": jax.random.normal(key1, (5,)), "h": jax.random.normal(key1, (3,), jnp.bfloat16)}
  p = {"w": jax.random.normal(key2, (5,)), "h": jax.random.normal(key2, (3,), jnp.bfloat16)}
  for decay, expected in ((0.0, p), (1.0, e)):
    new = jax.jit(ema.update_ema)(e, p, jnp.float32(decay))
    for k in e:
      assert new[k].dtype == e[k].dtype
      np.testing.assert_array_equal(new[k], expected[k])


def test_repeated_updates_follow_the_closed_form():
  # A constant target: ema_n = target + beta ** n * (ema_0 - target).
  e, target, beta = {"w": jnp.array(4.0)}, {"w": jnp.array(0.0)}, 0.9
  for _ in range(20):
    e = ema.update_ema(e, target, beta)
  np.testing.assert_allclose(e["w"], 4.0 * 0.9 ** 20, rtol=1e-5)
