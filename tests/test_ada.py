"""ADA: each op against NumPy on the same draws, p's semantics, gradients, update_p."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemgan import ada

B, H, W = 16, 16, 16


@pytest.fixture(scope="module")
def images():
  # Values in [-1, 1] that are never exactly 0, so zeros mark cut pixels.
  u = jax.random.uniform(jax.random.PRNGKey(0), (B, H, W, 3), minval=0.05, maxval=1.0)
  sign = jnp.where(jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, u.shape), 1.0, -1.0)
  return u * sign


def draw_and_apply(x, ops, p=1.0, seed=0):
  """(numpy draws, numpy output) for one key."""
  key = jax.random.PRNGKey(seed)
  params = jax.tree.map(np.asarray, ada.draw_params(key, p, x.shape, ops))
  y = np.asarray(ada.augment(x, p, key, ops))
  return params, y


def np_blit(x, flip, k, dy, dx):
  """Reference for one image: flip, rot90 k times, then shift with reflect fill."""
  x = x[:, ::-1] if flip else x
  x = np.rot90(x, k, axes=(0, 1))
  m = max(abs(dy), abs(dx))
  padded = np.pad(x, ((m, m), (m, m), (0, 0)), mode="reflect")
  return padded[m - dy:m - dy + x.shape[0], m - dx:m - dx + x.shape[1]]


def test_validate_ops():
  assert ada.validate_ops(" xflip, cutout") == ("xflip", "cutout")
  assert ada.validate_ops("") == () and ada.validate_ops(["xint"]) == ("xint",)
  with pytest.raises(ValueError, match=r"'flip'.*xflip, rotate90, xint, brightness"):
    ada.augment(jnp.zeros((1, 4, 4, 3)), 0.5, jax.random.PRNGKey(0), ("flip",))
  with pytest.raises(ValueError, match="NHWC"):
    ada.augment(jnp.zeros((4, 4, 3)), 0.5, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="square"):
    ada.augment(jnp.zeros((1, 4, 6, 3)), 0.5, jax.random.PRNGKey(0), ("rotate90",))
  assert ada.augment(jnp.zeros((1, 4, 6, 3)), 1.0, jax.random.PRNGKey(0),
                     ("xflip", "xint", "cutout")).shape == (1, 4, 6, 3)


def test_p0_is_exact_identity(images):
  x = images.at[0, 0, 0].set(-0.0)  # x + 0 would turn -0.0 into +0.0
  np.testing.assert_array_equal(np.asarray(ada.augment(x, 0.0, jax.random.PRNGKey(2))), x)
  fn = jax.jit(lambda x, p: ada.augment(x, p, jax.random.PRNGKey(2)))
  out = np.asarray(fn(x, jnp.float32(0.0)))
  assert out.tobytes() == np.asarray(x).tobytes()  # bit for bit, signed zero included
  xb = x.astype(jnp.bfloat16)
  assert np.asarray(fn(xb, 0.0)).tobytes() == np.asarray(xb).tobytes()


def test_xflip_at_p1(images):
  params, y = draw_and_apply(images, ("xflip",), seed=3)
  assert set(params["xflip"]) == {0, 1}  # ADA: a selected sample flips half the time
  x = np.asarray(images)
  for i in range(B):
    np.testing.assert_array_equal(y[i], x[i, :, ::-1] if params["xflip"][i] else x[i])


def test_rotate90_at_p1(images):
  params, y = draw_and_apply(images, ("rotate90",), seed=4)
  assert len(set(params["rotate90"])) >= 3 and set(params["rotate90"]) <= {0, 1, 2, 3}
  for i in range(B):
    np.testing.assert_array_equal(y[i], np.rot90(np.asarray(images[i]), params["rotate90"][i]))


def test_xint_is_reflect_filled_shift(images):
  params, y = draw_and_apply(images, ("xint",), seed=5)
  shifts = params["xint"]
  assert np.abs(shifts).max() <= round(H * ada.XINT_MAX) and shifts.min() < 0 < shifts.max()
  for i, (dy, dx) in enumerate(shifts):
    np.testing.assert_array_equal(y[i], np_blit(np.asarray(images[i]), 0, 0, dy, dx))


def test_geometric_ops_compose_in_order(images):
  params, y = draw_and_apply(images, ada.GEOMETRIC_OPS, seed=6)
  for i in range(B):
    ref = np_blit(np.asarray(images[i]), params["xflip"][i], params["rotate90"][i],
                  *params["xint"][i])
    np.testing.assert_array_equal(y[i], ref)


def test_colour_ops_closed_forms(images):
  x = np.asarray(images, np.float64)
  params, y = draw_and_apply(images, ("brightness", "contrast", "saturation"), seed=7)
  b, c, s = (params[k][:, None, None, None] for k in ("brightness", "contrast", "saturation"))
  luma = lambda v: v.mean(-1, keepdims=True)
  # y = L + s (z - L) with z = c (x + b), L = z's per-pixel channel mean.
  np.testing.assert_allclose(luma(y), c * (luma(x) + b), atol=1e-5)
  np.testing.assert_allclose(y - luma(y), c * s * (x - luma(x)), atol=1e-5)
  np.testing.assert_allclose(y.mean((1, 2, 3)), (c * (x.mean((1, 2, 3), keepdims=True) + b)).ravel(),
                             atol=1e-5)
  np.testing.assert_allclose(luma(y).std((1, 2, 3)), c.ravel() * luma(x).std((1, 2, 3)), rtol=1e-4)


def test_colour_draw_distributions():
  params = ada.draw_params(jax.random.PRNGKey(8), 1.0, (4096, 4, 4, 3),
                           ("brightness", "contrast", "saturation"))
  # ADA: b ~ N(0, 0.2), log2 c ~ N(0, 0.5), log2 s ~ N(0, 1); 4096 draws: ~1 % error.
  for name, values, std in (("brightness", params["brightness"], 0.2),
                            ("contrast", jnp.log2(params["contrast"]), 0.5),
                            ("saturation", jnp.log2(params["saturation"]), 1.0)):
    assert abs(float(jnp.std(values)) / std - 1) < 0.06, name
    assert abs(float(jnp.mean(values))) < 0.06 * std, name


def test_cutout_zeroes_a_half_size_square(images):
  params, y = draw_and_apply(images, ("cutout",), seed=9)
  x = np.asarray(images)
  full = 0
  for i, (cy, cx, size) in enumerate(params["cutout"]):
    cut = np.all(y[i] == 0, -1)
    np.testing.assert_array_equal(y[i][~cut], x[i][~cut])
    # Independent reference: pixel index ranges of the square, clipped.
    lo_y, hi_y = int(np.ceil(cy * H - size * H / 2 - 0.5)), int(np.floor(cy * H + size * H / 2 - 0.5))
    lo_x, hi_x = int(np.ceil(cx * W - size * W / 2 - 0.5)), int(np.floor(cx * W + size * W / 2 - 0.5))
    ref = np.zeros((H, W), bool)
    ref[max(lo_y, 0):hi_y + 1, max(lo_x, 0):hi_x + 1] = True
    np.testing.assert_array_equal(cut, ref)
    if lo_y >= 0 and hi_y < H and lo_x >= 0 and hi_x < W:
      assert cut.sum() == (H // 2) * (W // 2)
      full += 1
  assert full > 0


# Expected share of changed samples at p = 0.5: xflip flips half the selected,
# rotate90 leaves k = 0, xint rounds to no shift on both axes w.p. 1/16 at 16 px.
@pytest.mark.parametrize("op,expected", [
    ("xflip", 0.25), ("rotate90", 0.375), ("xint", 0.5 * 15 / 16), ("brightness", 0.5),
    ("contrast", 0.5), ("saturation", 0.5), ("cutout", 0.5)])
def test_per_sample_probability(op, expected):
  x = jax.random.uniform(jax.random.PRNGKey(10), (256, H, W, 3), minval=-1, maxval=1)
  y = ada.augment(x, 0.5, jax.random.PRNGKey(11), (op,))
  changed = np.mean(np.any(np.asarray(y != x), (1, 2, 3)))
  assert abs(changed - expected) < 0.12, changed  # ~4 sd at 256 samples


def test_ops_draw_independently():
  params = ada.draw_params(jax.random.PRNGKey(12), 0.5, (1024, 8, 8, 3))
  on_b, on_c = np.asarray(params["brightness"] != 0), np.asarray(params["contrast"] != 1)
  assert abs(np.mean(on_b & on_c) - 0.25) < 0.05
  # A subset of ops keeps the others' draws.
  sub = ada.draw_params(jax.random.PRNGKey(12), 0.5, (1024, 8, 8, 3), ("contrast",))
  np.testing.assert_array_equal(sub["contrast"], params["contrast"])


def test_gradients(images):
  weights = jax.random.normal(jax.random.PRNGKey(13), images.shape)
  loss = lambda x: jnp.sum(ada.augment(x, 1.0, jax.random.PRNGKey(14)) * weights)
  grads = np.asarray(jax.grad(loss)(images))
  assert np.all(np.isfinite(grads)) and np.all(np.abs(grads).sum((1, 2, 3)) > 0)
  # The blit copies pixels: d sum(y) / dx counts each pixel's copies, H W C in all.
  blit = lambda x: jnp.sum(ada.augment(x, 1.0, jax.random.PRNGKey(15), ada.GEOMETRIC_OPS))
  counts = np.asarray(jax.grad(blit)(images))
  assert set(np.unique(counts)) <= {0.0, 1.0, 2.0, 4.0}  # rows x cols, each 0-2
  np.testing.assert_array_equal(counts.sum((1, 2, 3)), H * W * 3)


def test_jit_inside_scan_with_traced_p(images):
  def body(p, key):
    y = ada.augment(images, p, key)
    return p + 0.25, jnp.sum(y)

  keys = jax.random.split(jax.random.PRNGKey(16), 3)
  _, sums = jax.jit(lambda: jax.lax.scan(body, jnp.float32(0.25), keys))()
  eager = [jnp.sum(ada.augment(images, p, k)) for p, k in zip((0.25, 0.5, 0.75), keys)]
  np.testing.assert_allclose(sums, eager, rtol=1e-5)


def test_update_p_formula():
  # 64 * 4 / 500_000 = 5.12e-4 per update.
  kw = dict(batch_size=64, interval=4, target=0.6, speed_kimg=500)
  np.testing.assert_allclose(ada.update_p(0.5, 0.7, **kw), 0.500512, rtol=1e-6)
  np.testing.assert_allclose(ada.update_p(0.5, 0.2, **kw), 0.499488, rtol=1e-6)
  assert float(ada.update_p(0.5, 0.6, **kw)) == 0.5
  assert float(ada.update_p(0.0003, -1.0, **kw)) == 0.0  # clipped at 0
  assert float(ada.update_p(0.9999, 1.0, **kw)) == 1.0  # clipped at 1
  # Defaults are ADA's; traced inputs under jit.
  step = jax.jit(lambda p, r: ada.update_p(p, r, batch_size=32))
  np.testing.assert_allclose(step(0.1, 0.9), 0.1 + 32 * 4 / 500_000, rtol=1e-6)
  assert ada.DEFAULTS["target"] == 0.6 and ada.DEFAULTS["interval"] == 4
  assert ada.DEFAULTS["speed_kimg"] == 500 and ada.DEFAULTS["ops"] == ada.OPS


def test_rt_is_mean_sign():
  assert float(ada.rt(jnp.array([2.0, -1.0, 3.0, 0.0]))) == 0.25
