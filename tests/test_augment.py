"""DiffAugment: each op's semantics against the official code, gradients, identity, RNG."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemgan import augment

B, H, W = 8, 16, 16
OPS = ("color", "translation", "cutout")


@pytest.fixture(scope="module")
def images():
  # Values in [-1, 1] that are never exactly 0, so zeros mark filled pixels.
  u = jax.random.uniform(jax.random.PRNGKey(0), (B, H, W, 3), minval=0.05, maxval=1.0)
  sign = jnp.where(jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, u.shape), 1.0, -1.0)
  return u * sign


def augment_np(x, policy, seed=0, strength=1.0):
  return np.asarray(augment.diff_augment(x, policy, jax.random.PRNGKey(seed), strength))


def color_factors(x, y):
  """Recovers per-sample (brightness b, saturation s, contrast c) from y = color(x).

  Official colour op: x' = x + b; x'' = m + s (x' - m) with m the per-pixel
  channel mean; y = M + c (x'' - M) with M the image mean. Hence
  y - chan_mean(y) = c s (x - chan_mean(x)), chan_mean(y) - mean(y) =
  c (chan_mean(x) - mean(x)), mean(y) = mean(x) + b.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  cm = lambda v: v.mean(-1, keepdims=True)
  im = lambda v: v.mean((1, 2, 3), keepdims=True)
  fit = lambda a, b: (a * b).sum((1, 2, 3)) / (a * a).sum((1, 2, 3))  # least squares y ~ k a
  cs = fit(x - cm(x), y - cm(y))
  c = fit(cm(x) - im(x), cm(y) - im(y))
  b = (im(y) - im(x)).ravel()
  # The model must explain y exactly, not just on average.
  recon = im(x) + b[:, None, None, None] + c[:, None, None, None] * (cm(x) - im(x)) + \
      cs[:, None, None, None] * (x - cm(x))
  np.testing.assert_allclose(recon, y, atol=1e-5)
  return b, cs / c, c


def test_parse_policy():
  assert augment.parse_policy("") == ()
  assert augment.parse_policy(" color , cutout") == ("color", "cutout")
  with pytest.raises(ValueError, match=r"'colour'.*color, translation, cutout"):
    augment.parse_policy("colour,translation")
  with pytest.raises(ValueError, match="unknown DiffAugment op ''"):
    augment.parse_policy("color,,cutout")


def test_unknown_op_and_bad_input_raise(images):
  with pytest.raises(ValueError, match="'flip'"):
    augment.diff_augment(images, "color,flip", jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="NHWC"):
    augment.diff_augment(images[0], "color", jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="float"):
    augment.diff_augment(images.astype(jnp.int32), "color", jax.random.PRNGKey(0))


@pytest.mark.parametrize("policy", OPS + ("color,translation,cutout",))
def test_shape_dtype_and_jit(images, policy):
  for dtype in (jnp.float32, jnp.bfloat16):
    x = images.astype(dtype)
    y = augment.diff_augment(x, policy, jax.random.PRNGKey(3))
    assert y.shape == x.shape and y.dtype == dtype
  jitted = jax.jit(augment.diff_augment, static_argnames="policy")
  # Same draws under jit (up to XLA's fusion rounding).
  np.testing.assert_allclose(jitted(images, policy, jax.random.PRNGKey(3)),
                             augment_np(images, policy, seed=3), atol=1e-6)


def test_empty_policy_is_identity(images):
  assert augment.diff_augment(images, "", jax.random.PRNGKey(0)) is images


@pytest.mark.parametrize("policy", OPS + ("color,translation,cutout",))
def test_zero_strength_is_exact_identity(images, policy):
  np.testing.assert_array_equal(augment_np(images, policy, strength=0.0), images)
  # Also as a traced strength inside jit.
  fn = jax.jit(lambda x, s: augment.diff_augment(x, policy, jax.random.PRNGKey(0), s))
  np.testing.assert_array_equal(fn(images, jnp.float32(0.0)), images)


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_color_matches_official_ranges(images, strength):
  y = augment_np(images, "color", seed=4, strength=strength)
  b, s, c = color_factors(images, y)
  eps = 1e-4
  # Official: b ~ U(-0.5, 0.5), s ~ U(0, 2), c ~ U(0.5, 1.5); strength scales towards 0, 1, 1.
  assert np.all(np.abs(b) <= 0.5 * strength + eps)
  assert np.all(np.abs(s - 1) <= strength + eps)
  assert np.all(np.abs(c - 1) <= 0.5 * strength + eps)
  for f in (b, s, c):
    assert np.std(f) > 0.01  # drawn per sample


def test_color_leaves_grey_images_grey(images):
  grey = jnp.repeat(jnp.mean(images, -1, keepdims=True), 3, -1)
  y = augment_np(grey, "color", seed=5)
  np.testing.assert_allclose(y, np.repeat(y[..., :1], 3, -1), atol=1e-6)


def _shift(x, dh, dw):
  """out[i, j] = x[i + dh, j + dw], 0 outside (NumPy reference)."""
  out = np.zeros_like(x)
  h, w = x.shape[:2]
  src_h = slice(max(dh, 0), h + min(dh, 0))
  src_w = slice(max(dw, 0), w + min(dw, 0))
  dst_h = slice(max(-dh, 0), h + min(-dh, 0))
  dst_w = slice(max(-dw, 0), w + min(-dw, 0))
  out[dst_h, dst_w] = x[src_h, src_w]
  return out


@pytest.mark.parametrize("strength,max_shift", [(1.0, H // 8), (0.5, H // 16)])
def test_translation_is_zero_filled_integer_shift(images, strength, max_shift):
  x = np.asarray(images)
  shifts = set()
  for seed in range(4):
    y = augment_np(images, "translation", seed=seed, strength=strength)
    for xi, yi in zip(x, y):
      matches = [(dh, dw) for dh in range(-max_shift, max_shift + 1)
                 for dw in range(-max_shift, max_shift + 1)
                 if np.array_equal(yi, _shift(xi, dh, dw))]
      assert matches, "output is not a zero-filled shift within the allowed range"
      shifts.update(matches)
  # Drawn per sample, independently along each axis.
  assert len({dh for dh, _ in shifts}) > 1 and len({dw for _, dw in shifts}) > 1


def test_cutout_zeroes_one_half_size_square(images):
  x = np.asarray(images)
  y = augment_np(images, "cutout", seed=6)
  starts = set()
  for xi, yi in zip(x, y):
    cut = np.all(yi == 0, -1)
    np.testing.assert_array_equal(yi[~cut], xi[~cut])  # the rest is untouched
    rows, cols = np.nonzero(cut.any(1))[0], np.nonzero(cut.any(0))[0]
    assert rows.size and cols.size
    # One axis-aligned rectangle ...
    assert cut.sum() == rows.size * cols.size
    assert np.all(np.diff(rows) == 1) and np.all(np.diff(cols) == 1)
    # ... H//2 x W//2 unless clipped by a border.
    for idx, n in ((rows, H), (cols, W)):
      touches = idx[0] == 0 or idx[-1] == n - 1
      assert idx.size == n // 2 or (touches and idx.size < n // 2)
    starts.add((rows[0], cols[0]))
  # Placed per sample, independently along each axis.
  assert len({r for r, _ in starts}) > 1 and len({c for _, c in starts}) > 1


def test_cutout_strength_shrinks_square(images):
  y = augment_np(images, "cutout", seed=7, strength=0.5)
  per_sample = np.all(y == 0, -1).sum((1, 2))
  assert np.all(per_sample <= (H // 4) * (W // 4)) and per_sample.max() > 0


@pytest.mark.parametrize("policy", OPS + ("color,translation,cutout",))
def test_gradients_flow_to_images(images, policy):
  weights = jax.random.normal(jax.random.PRNGKey(8), images.shape)
  loss = lambda x: jnp.sum(augment.diff_augment(x, policy, jax.random.PRNGKey(9)) * weights)
  grads = jax.grad(loss)(images)
  assert np.all(np.isfinite(grads))
  assert np.all(np.abs(grads).sum((1, 2, 3)) > 0)  # every sample gets gradient


def test_geometric_gradients_are_the_adjoint(images):
  # Both ops are linear with 0/1 weights: d sum(y) / dx is 1 where a pixel survives.
  key = jax.random.PRNGKey(10)
  for policy in ("translation", "cutout"):
    fn = lambda x: augment.diff_augment(x, policy, key)
    grads = np.asarray(jax.grad(lambda x: jnp.sum(fn(x)))(images))
    assert set(np.unique(grads)) <= {0.0, 1.0}
    # As many pixels reach the output as receive gradient.
    np.testing.assert_equal(grads.sum(), np.count_nonzero(np.asarray(fn(images))))


def test_rng_determinism_and_per_sample_variation(images):
  policy = "color,translation,cutout"
  np.testing.assert_array_equal(augment_np(images, policy, seed=11),
                                augment_np(images, policy, seed=11))
  assert not np.array_equal(augment_np(images, policy, seed=11),
                            augment_np(images, policy, seed=12))
  same = jnp.repeat(images[:1], B, 0)
  for op in OPS:
    y = augment_np(same, op, seed=13)
    distinct = {y[i].tobytes() for i in range(B)}
    assert len(distinct) >= B // 2, op
