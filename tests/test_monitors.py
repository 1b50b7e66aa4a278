"""Overfitting and diversity signals, and the alarms, on hand-computed cases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemgan import monitors


def test_overfit_rt():
  np.testing.assert_allclose(monitors.overfit_rt(jnp.array([2.0, 0.5, -1.0, 3.0])), 0.5)
  np.testing.assert_allclose(monitors.overfit_rt(jnp.array([-2.0, -0.1])), -1.0)
  # sign(0) = 0: an undecided critic counts for neither side.
  np.testing.assert_allclose(monitors.overfit_rt(jnp.array([0.0, 1.0, 0.0, 1.0])), 0.5)


def test_diversity_hand_computed():
  # Two 1-value "images" a, b: between = ((a - b) / 2) ** 2, total the same -> 1.
  np.testing.assert_allclose(monitors.sample_diversity(jnp.array([[1.0], [-1.0]])), 1.0)
  # x = [[0, 2], [2, 0]]: per-position variances 1 and 1 -> between 1; all values
  # {0, 2, 2, 0} -> total 1; diversity 1.
  np.testing.assert_allclose(monitors.sample_diversity(jnp.array([[0.0, 2.0], [2.0, 0.0]])), 1.0)
  # x = [[0, 2], [0, 4]]: per-position variances 0 and 1 -> between 0.5;
  # values {0, 2, 0, 4}: mean 1.5, var (2.25 + 0.25 + 2.25 + 6.25) / 4 = 2.75.
  np.testing.assert_allclose(monitors.sample_diversity(jnp.array([[0.0, 2.0], [0.0, 4.0]])),
                             0.5 / 2.75, rtol=1e-6)


def test_diversity_matches_pairwise_distance_definition():
  x = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (6, 4, 4, 3), minval=-1.0))
  flat = x.reshape(6, -1)
  pairwise = ((flat[:, None] - flat[None]) ** 2).sum(-1).mean()  # all ordered pairs
  expected = pairwise / (2 * flat.shape[1] * flat.var())
  np.testing.assert_allclose(monitors.sample_diversity(x), expected, rtol=1e-5)


def test_diversity_collapse_noise_and_invariances():
  key1, key2 = jax.random.split(jax.random.PRNGKey(1))
  one = jax.random.uniform(key1, (1, 8, 8, 3), minval=-1.0)
  assert float(monitors.sample_diversity(jnp.repeat(one, 16, 0))) < 1e-6
  assert float(monitors.sample_diversity(jnp.zeros((4, 8, 8, 3)))) == 0.0  # 0 / 0 -> 0
  noise = jax.random.uniform(key2, (16, 8, 8, 3), minval=-1.0)
  d = float(monitors.sample_diversity(noise))
  np.testing.assert_allclose(d, 15 / 16, atol=0.03)  # (B - 1) / B for i.i.d. values
  np.testing.assert_allclose(monitors.sample_diversity(0.1 * noise + 0.3), d, rtol=1e-4)
  # Small jitter around one image is still (near) collapse.
  jitter = jnp.repeat(one, 16, 0) + 0.02 * jax.random.normal(key2, (16, 8, 8, 3))
  assert float(monitors.sample_diversity(jitter)) < 0.01


def test_check_alarms_fires_and_names_everything():
  warnings = monitors.check_alarms(
      {"step": 1200, "overfit_rt": np.float32(0.75), "sample_diversity": 0.01,
       "d_loss": 0.3}, overfit_threshold=0.6, collapse_threshold=0.05)
  assert len(warnings) == 2
  overfit, collapse = warnings
  for text in ("step 1200", "overfit_rt", "0.75", "threshold 0.6", "overfitting"):
    assert text in overfit
  for text in ("step 1200", "sample_diversity", "0.01", "threshold 0.05", "collapse"):
    assert text in collapse


def test_check_alarms_quiet_when_healthy_absent_or_disabled():
  assert monitors.check_alarms({"step": 5, "overfit_rt": 0.2, "sample_diversity": 0.7},
                               0.6, 0.05) == []
  assert monitors.check_alarms({"step": 5, "d_loss": 1.0}, 0.6, 0.05) == []
  # Exactly at the threshold is not past it.
  assert monitors.check_alarms({"overfit_rt": 0.6, "sample_diversity": 0.05}, 0.6, 0.05) == []
  assert monitors.check_alarms({"overfit_rt": 1.0, "sample_diversity": 0.0}, None, None) == []
  # Device scalars work too.
  assert len(monitors.check_alarms({"step": 1, "overfit_rt": jnp.float32(0.9)}, 0.6, 0.05)) == 1


@pytest.mark.parametrize("name", ["overfit_rt", "sample_diversity"])
def test_check_alarms_flags_non_finite(name):
  warnings = monitors.check_alarms({"step": 7, name: float("nan")}, 0.6, 0.05)
  assert warnings == [f"step 7: {name} is nan"]
