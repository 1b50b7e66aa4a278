"""FID, KID, precision/recall and SWD on cases with known answers; the Evaluator's plumbing."""
import importlib.util
import json
import os
import subprocess
import sys
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
from scipy import linalg
from scipy import stats
from scipy.spatial.distance import cdist

from gemgan import evaluation
from gemgan.metrics import density_coverage
from gemgan.metrics import fid
from gemgan.metrics import image_files
from gemgan.metrics import inception
from gemgan.metrics import kid
from gemgan.metrics import precision_recall as pr
from gemgan.metrics import real_stats
from gemgan.metrics import swd
from tests.conftest import REPO_ROOT


def _spd(rng, d, scale=1.0):
  a = rng.standard_normal((d, 2 * d))
  return scale * a @ a.T / (2 * d) + 0.1 * np.eye(d)


# --- Fréchet distance -------------------------------------------------------

def test_frechet_distance_closed_form_diagonal():
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
  # Commuting covariances: Tr((S1 S2)^1/2) = sum sqrt(v1 v2).
  want = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))  # 5 + 2 = 7
  got = fid.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
  assert got == pytest.approx(7.0, abs=1e-10) and want == pytest.approx(7.0)


def test_frechet_distance_against_direct_scipy():
  rng = np.random.default_rng(0)
  d = 24
  s1, s2 = _spd(rng, d), _spd(rng, d, 3.0)
  mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
  # The symmetric form: Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2).
  r = linalg.sqrtm(s1).real
  want = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
          - 2 * np.trace(linalg.sqrtm(r @ s2 @ r).real))
  assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-9)
  assert fid.frechet_distance_sqrtm(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-9)
  assert fid.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)
  assert fid.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(want, rel=1e-9)


def test_frechet_distance_equals_sqrtm_at_2048_d_and_realistic_rank():
  """pytorch-fid's sqrtm method on Inception-like statistics: 2048-d, non-negative
  features with a low-rank structure, 3000 real and 1000 fake (fake S2 singular)."""
  rng = np.random.default_rng(20)
  d = 2048
  basis = rng.standard_normal((256, d)) * 0.05

  def features(n, shift):
    noise = rng.standard_normal((n, d)) * 0.2
    return np.maximum(rng.standard_normal((n, 256)) @ basis + noise + shift, 0)

  fake_f = features(1000, 0.35)
  real, fake = fid.feature_statistics(features(3000, 0.3)), fid.feature_statistics(fake_f)
  want = fid.frechet_distance_sqrtm(*real, *fake)
  assert fid.frechet_distance(*real, *fake) == pytest.approx(want, rel=1e-6)
  assert fid.frechet_distance(*real, *fake) == pytest.approx(want, rel=1e-6)  # cached root
  assert fid.frechet_distance_to_features(*real, fake_f) == pytest.approx(want, rel=1e-6)


def test_fid_of_few_samples_is_finite_and_matches_eigenvalues():
  # N < D: singular covariances, the case pytorch-fid guards (complex sqrtm).
  rng = np.random.default_rng(1)
  a, b = rng.standard_normal((10, 32)), rng.standard_normal((12, 32)) + 0.5
  got = fid.fid_from_features(a, b)
  (m1, s1), (m2, s2) = fid.feature_statistics(a), fid.feature_statistics(b)
  tr = np.sum(np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)))
  want = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
  assert np.isfinite(got) and got == pytest.approx(want, rel=1e-6)
  assert fid.frechet_distance_to_features(m1, s1, b) == pytest.approx(want, rel=1e-6)


def test_fid_infinity_removes_the_small_sample_bias():
  # Gaussian features with a closed-form FID: at N = 640 in 64-d, FID_N sits
  # ~2 above the truth on every seed; the 1/N extrapolation lands within ~1.
  err_n, err_inf = [], []
  for seed in range(6):
    rng = np.random.default_rng(seed)
    d, n = 64, 640
    s_real, s_fake = _spd(rng, d), _spd(rng, d, 2.0)
    mu_fake = 0.3 * rng.standard_normal(d)
    true = fid.frechet_distance(np.zeros(d), s_real, mu_fake, s_fake)
    x = mu_fake + rng.standard_normal((n, d)) @ np.linalg.cholesky(s_fake).T
    got, slope, points = fid.fid_infinity(np.zeros(d), s_real, x, num_points=8, seed=seed)
    assert [p[0] for p in points] == np.linspace(128, 640, 8).astype(int).tolist()
    assert points[-1][1] == pytest.approx(fid.frechet_distance(
        np.zeros(d), s_real, *fid.feature_statistics(x)), rel=1e-9)
    assert slope > 0
    err_n.append(abs(points[-1][1] - true))
    err_inf.append(abs(got - true))
  assert min(err_n) > 1.0 and np.mean(err_inf) < 0.4 * np.mean(err_n)
  with pytest.raises(ValueError, match="subset sizes"):
    fid.fid_infinity(np.zeros(d), s_real, x[:4], num_points=8)


def test_feature_statistics_match_numpy_and_reject_one_sample():
  x = np.random.default_rng(2).standard_normal((50, 5)).astype(np.float32)
  mu, sigma = fid.feature_statistics(x)
  assert mu.dtype == sigma.dtype == np.float64
  np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False))
  with pytest.raises(ValueError, match="N >= 2"):
    fid.feature_statistics(x[:1])


# --- KID ---------------------------------------------------------------------

def test_mmd2_unbiased_matches_pairwise_definition():
  rng = np.random.default_rng(3)
  x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 4)) + 1
  k = lambda a, b: (a @ b / 4 + 1) ** 3
  m = len(x)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
  got = kid.mmd2_unbiased(kid.polynomial_kernel(x, x), kid.polynomial_kernel(x, y),
                          kid.polynomial_kernel(y, y))
  assert got == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_kid_identical_sets_near_zero_and_shift_grows():
  rng = np.random.default_rng(4)
  x = rng.standard_normal((300, 16))
  same_mean, same_std = kid.kernel_inception_distance(x, x, num_subsets=20, subset_size=100)
  assert abs(same_mean) < 3 * same_std + 1e-3
  means = [kid.kernel_inception_distance(x, x + s, num_subsets=20, subset_size=100)[0]
           for s in (0.5, 1.0, 2.0)]
  assert means[0] > abs(same_mean) + 3 * same_std and means[0] < means[1] < means[2]
  with pytest.raises(ValueError, match="subset size"):
    kid.kernel_inception_distance(x[:50], x, subset_size=100)


def _inception_like(rng, n, shift, d=2048):
  """Non-negative features with a low-rank structure, at Inception's scale."""
  basis = np.random.default_rng(99).standard_normal((64, d)) * 0.05
  noise = rng.standard_normal((n, d)) * 0.2
  return np.maximum(rng.standard_normal((n, 64)) @ basis + noise + shift, 0).astype(np.float32)


def test_kid_whole_kernel_float32_matches_float64_per_subset():
  rng = np.random.default_rng(21)
  real, fake = _inception_like(rng, 500, 0.3), _inception_like(rng, 300, 0.36)
  args = (real, fake, 8, 200)
  per_subset = kid.kernel_inception_distance(*args, dtype=np.float64, max_kernel_entries=0)
  whole = kid.kernel_inception_distance(*args, dtype=np.float64)
  assert whole == pytest.approx(per_subset, rel=1e-12)  # same subsets, same sums
  mean32, std32 = kid.kernel_inception_distance(*args)
  assert per_subset[0] > 10 * per_subset[1] / np.sqrt(8)  # a KID well above its noise
  assert mean32 == pytest.approx(per_subset[0], rel=1e-5)
  assert std32 == pytest.approx(per_subset[1], rel=1e-4)


# --- precision / recall -------------------------------------------------------

def test_float32_distances_and_prdc_match_float64_on_inception_like_features():
  rng = np.random.default_rng(22)
  real, fake = _inception_like(rng, 400, 0.3), _inception_like(rng, 300, 0.33)
  d32 = pr.pairwise_distances(fake, real)
  d64 = pr.pairwise_distances(fake, real, dtype=np.float64)
  assert d32.dtype == np.float32 and d64.min() > 1.0
  np.testing.assert_allclose(d32, d64, rtol=1e-5)
  got = density_coverage.prdc(real, fake)
  assert (got["precision"], got["recall"]) == pr.precision_recall(real, fake)
  assert (got["density"], got["coverage"]) == density_coverage.density_coverage(real, fake)
  assert 0.05 < got["precision"] < 0.95 and 0.05 < got["coverage"] < 0.95  # not saturated
  r3, r5 = pr.knn_radii_many(real, (3, 5))
  np.testing.assert_array_equal(r5, pr.knn_radii(real, 5))
  assert density_coverage.prdc(real, fake, real_radii=(r3, r5)) == got
  want = _prdc_float64(real, fake)
  for key, value in got.items():  # at most one point of 300-400 on the other side
    assert value == pytest.approx(want[key], abs=1.0 / 300), key


def _prdc_float64(real, fake, pr_k=3, dc_k=5):
  """The definitions, in float64 without the matrix-product form (scipy's cdist)."""
  real, fake = real.astype(np.float64), fake.astype(np.float64)
  rr, ff, fr = cdist(real, real), cdist(fake, fake), cdist(fake, real)
  r_pr, r_dc = np.sort(rr, 1)[:, pr_k], np.sort(rr, 1)[:, dc_k]
  f_pr = np.sort(ff, 1)[:, pr_k]
  inside = fr < r_dc[None]
  return {"precision": np.mean((fr <= r_pr[None]).any(1)),
          "recall": np.mean((fr <= f_pr[:, None]).any(0)),
          "density": inside.sum(1).mean() / dc_k, "coverage": inside.any(0).mean()}


def test_knn_radii_match_brute_force():
  x = np.random.default_rng(5).standard_normal((30, 7))
  d = np.linalg.norm(x[:, None] - x[None], axis=-1)
  want = np.sort(d, axis=1)[:, 3]
  np.testing.assert_allclose(pr.knn_radii(x, 3), want, atol=1e-6)


def test_precision_recall_cases():
  rng = np.random.default_rng(6)
  real = rng.standard_normal((200, 8))
  assert pr.precision_recall(real, real) == (1.0, 1.0)
  assert pr.precision_recall(real, real + 100.0) == (0.0, 0.0)
  # Fakes collapsed onto a small region of the real set: precise, no recall.
  collapsed = real[0] + 0.01 * rng.standard_normal((200, 8))
  p, r = pr.precision_recall(real, collapsed)
  assert p == 1.0 and r < 0.1


# --- SWD -------------------------------------------------------------------------

def _smooth_images(rng, n, size):
  low = rng.uniform(0, 255, (n, size // 4, size // 4, 3)).astype(np.float32)
  up = np.asarray(jax.image.resize(low, (n, size, size, 3), "bilinear"))
  return np.clip(up, 0, 255).astype(np.uint8)


def test_laplacian_pyramid_reconstructs_the_image():
  x = np.random.default_rng(7).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
  levels = swd.laplacian_pyramid(x, swd.num_levels(32))
  assert [lvl.shape[1] for lvl in levels] == [32, 16]
  up = np.zeros_like(x)
  up[:, ::2, ::2] = levels[1]
  np.testing.assert_allclose(levels[0] + 4 * swd._blur(up), x, atol=1e-3)
  assert (swd.num_levels(96), swd.num_levels(128), swd.num_levels(15)) == (3, 4, 0)


def test_swd_self_zero_and_grows_with_noise():
  rng = np.random.default_rng(8)
  x = _smooth_images(rng, 64, 32)
  noisy = lambda s: np.clip(x + rng.normal(0, s, x.shape), 0, 255).astype(np.uint8)
  assert swd.swd(x, x) == {"swd_32": 0.0, "swd_16": 0.0, "swd_mean": 0.0}
  d = [swd.swd(x, noisy(s)) for s in (2, 8, 32)]
  # Noise is a fine-scale change: the 32 px band sees it first and most.
  assert 0 < d[0]["swd_32"] < d[1]["swd_32"] < d[2]["swd_32"]
  assert d[2]["swd_32"] > 10 * d[0]["swd_32"] and d[2]["swd_32"] > d[2]["swd_16"]
  assert d[0]["swd_mean"] < d[1]["swd_mean"] < d[2]["swd_mean"]


def test_swd_descriptors_and_distance_match_direct_forms():
  rng = np.random.default_rng(10)
  level = rng.normal(size=(3, 12, 10, 3)).astype(np.float32)
  got = swd.patch_descriptors(level, np.random.default_rng(4), per_image=5)
  r = np.random.default_rng(4)
  img, ys, xs = np.repeat(np.arange(3), 5), r.integers(0, 6, 15), r.integers(0, 4, 15)
  raw = np.stack([level[i, y:y + 7, x:x + 7] for i, y, x in zip(img, ys, xs)]).astype(np.float64)
  want = (raw - raw.mean(axis=(0, 1, 2))) / raw.std(axis=(0, 1, 2))
  np.testing.assert_allclose(got, want.reshape(15, -1), rtol=1e-5, atol=1e-5)
  # The sliced distance: scipy's 1-D Wasserstein-1 along the same random directions.
  a = rng.normal(size=(50, 6)).astype(np.float32)
  b = rng.normal(1, 2, size=(50, 6)).astype(np.float32)
  got = swd.sliced_wasserstein(a, b, np.random.default_rng(5), repeats=2, directions=3)
  r, want = np.random.default_rng(5), []
  for _ in range(2):
    dirs = r.standard_normal((6, 3)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=0)
    want += [stats.wasserstein_distance(a @ d, b @ d) for d in dirs.T]
  assert got == pytest.approx(np.mean(want), rel=1e-5)


def test_swd_is_deterministic_and_checks_shapes():
  rng = np.random.default_rng(9)
  x, y = _smooth_images(rng, 8, 16), _smooth_images(rng, 10, 16)
  assert swd.swd(x, y, seed=3) == swd.swd(x, y, seed=3)
  with pytest.raises(ValueError, match="one size"):
    swd.swd(x, _smooth_images(rng, 8, 32))


# --- images on disk and the Inception weights file ---------------------------

def test_host_resize_matches_jax_image_resize():
  rng = np.random.default_rng(10)
  for shape in [(20, 30, 3), (300, 310, 3), (299, 299, 3)]:
    x = rng.random(shape, dtype=np.float32)
    want = jax.image.resize(jnp.asarray(x), (299, 299, 3), "bilinear", antialias=False)
    np.testing.assert_allclose(image_files.resize_bilinear(x, 299), want, atol=2e-5)


def test_image_files_from_folder_and_zip(tmp_path):
  rng = np.random.default_rng(11)
  (tmp_path / "set" / "sub").mkdir(parents=True)
  for i, rel in enumerate(["a.png", "sub/b.JPG", "sub/c.png"]):
    Image.fromarray(rng.integers(0, 256, (12 + i, 12, 3), dtype=np.uint8)).save(
        tmp_path / "set" / rel)
  (tmp_path / "set" / "notes.txt").write_text("not an image")
  with zipfile.ZipFile(tmp_path / "set.zip", "w") as z:
    for rel in ["a.png", "sub/b.JPG", "sub/c.png"]:
      z.write(tmp_path / "set" / rel, rel)
  for path in (tmp_path / "set", tmp_path / "set.zip"):
    assert image_files.list_images(str(path)) == ["a.png", "sub/b.JPG", "sub/c.png"]
    batches = list(image_files.iter_batches(str(path), 299, 2))
    assert [b.shape for b in batches] == [(2, 299, 299, 3), (1, 299, 299, 3)]
    assert image_files.load_uint8(str(path), 16).shape == (3, 16, 16, 3)
  with pytest.raises(ValueError, match="sizes"):
    image_files.load_uint8(str(tmp_path / "set"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="no image files"):
    image_files.list_images(str(tmp_path / "empty"))


def test_missing_weights_say_how_to_convert(tmp_path):
  with pytest.raises(inception.WeightsNotFoundError, match="convert_inception"):
    inception.load_variables(str(tmp_path / "nope.npz"))


def test_weights_round_trip_and_shape_check(tmp_path):
  variables = jax.tree_util.tree_map(lambda s: np.ones(s.shape, s.dtype),
                                     inception.abstract_variables())
  path = str(tmp_path / "w.npz")
  inception.save_variables(path, variables)
  loaded = inception.load_variables(path)
  assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(variables)
  np.savez(path, bogus=np.zeros(3))
  with pytest.raises(ValueError, match="does not hold FIDInceptionV3"):
    inception.load_variables(path)


# --- Evaluator (a stand-in feature extractor keeps it CPU-cheap) --------------

class _ColourFeatures:
  """Mean colour and a fixed random projection of 8x8 thumbnails: a cheap stand-in."""
  weights_id = "test"

  def __init__(self):
    self.calls = 0
    self.proj = np.random.default_rng(0).standard_normal((8 * 8 * 3, 16)) / 14

  def __call__(self, images):
    self.calls += 1
    if not isinstance(images, np.ndarray):  # batches of floats in [0, 1], as from files
      images = np.concatenate([b * 255 for b in images])
    x = np.asarray(jax.image.resize(images.astype(np.float32) / 255,
                                    (len(images), 8, 8, 3), "linear"))
    return np.concatenate([x.mean((1, 2)), x.reshape(len(x), -1) @ self.proj], 1)


def test_evaluator_metrics_cache_and_floor(tmp_path):
  rng = np.random.default_rng(12)
  real = _smooth_images(rng, 120, 16)
  extractor = _ColourFeatures()
  ev = evaluation.Evaluator.from_images(real, name="toy 16px", cache_dir=str(tmp_path),
                                      extractor=extractor, kid_subsets=10)
  assert extractor.calls == 1 and len(list(tmp_path.glob("toy-16px_*.npz"))) == 1
  good = ev(_smooth_images(rng, 60, 16))
  bad = ev(np.clip(_smooth_images(rng, 60, 16) * 0.3, 0, 255).astype(np.uint8))
  for key in ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage",
              "swd_16", "swd_mean"):
    assert np.isfinite(good[key]) and np.isfinite(bad[key])
  idx = ev._real_subset(60)[0]  # pylint: disable=protected-access
  fake_f = extractor(_smooth_images(np.random.default_rng(3), 60, 16))
  direct = density_coverage.density_coverage(ev.real_features[idx], fake_f, k=5)
  assert (ev(None, fake_features=fake_f)["density"],
          ev(None, fake_features=fake_f)["coverage"]) == pytest.approx(direct)
  assert bad["coverage"] < good["coverage"] and bad["density"] < good["density"]
  assert good["num_real"] == 120 and good["num_fake"] == 60 and good["kid_subset_size"] == 60
  assert bad["fid"] > 2 * good["fid"] and bad["kid_mean"] > good["kid_mean"]
  assert bad["precision"] < good["precision"]
  with_inf = evaluation.Evaluator(ev.real_features, None, extractor, fid_inf_points=4)(
      None, fake_features=fake_f)
  assert [p[0] for p in with_inf["fid_inf_points"]] == [12, 28, 44, 60]
  assert with_inf["fid_inf_points"][-1][1] == pytest.approx(with_inf["fid"], rel=1e-9)
  assert "fid_inf" not in good and np.isfinite(with_inf["fid_inf"])
  floor = ev.floor()
  assert floor["num_real"] == floor["num_fake"] == 60 and floor["fid"] < bad["fid"]
  assert floor["coverage"] > bad["coverage"] and floor["coverage_expected"] > 0.9
  # A second evaluator of the same pixels reads features and floor from the cache.
  again = evaluation.Evaluator.from_images(real, name="toy 16px", cache_dir=str(tmp_path),
                                         extractor=extractor, kid_subsets=10)
  assert extractor.calls == 4 and again.floor() == json.loads(json.dumps(floor))
  with pytest.raises(ValueError, match="uint8"):
    ev(real.astype(np.float32))


def test_evaluate_files_reports_metrics_and_floor(tmp_path, monkeypatch):
  rng = np.random.default_rng(15)
  for name, n in (("real", 40), ("fake", 20)):
    (tmp_path / name).mkdir()
    for i, im in enumerate(_smooth_images(rng, n, 24)):
      Image.fromarray(im).save(tmp_path / name / f"{i}.png")
  extractor = _ColourFeatures()
  monkeypatch.setattr(inception, "FeatureExtractor", lambda weights, batch_size: extractor)
  out = evaluation.evaluate_files(str(tmp_path / "real"), str(tmp_path / "fake"),
                                swd_size=16, cache_dir=str(tmp_path / "cache"))
  assert (out["num_real"], out["num_fake"], out["floor"]["num_fake"]) == (40, 20, 20)
  assert {"fid", "kid_mean", "precision", "recall", "density", "coverage", "swd_16",
          "swd_mean"} <= set(out) and {"density", "coverage"} <= set(out["floor"])
  assert json.loads(json.dumps(out)) == out
  calls = extractor.calls
  evaluation.evaluate_files(str(tmp_path / "real"), str(tmp_path / "fake"), swd_size=16,
                          cache_dir=str(tmp_path / "cache"))
  assert extractor.calls == calls + 1  # the real features came from the cache


# --- evaluation during training ---------------------------------------------

def test_config_evaluators_log_by_name_and_the_loop_keeps_the_best(tmp_path):
  from configs import wgan_gp
  from gemgan import config_lib
  from gemgan import models
  from gemgan import steps
  from gemgan import train
  config = wgan_gp.get_config("quick")
  config.data.image_size, config.model.width, config.model.latent_dim = 16, 4, 8
  config.batch_size = 4
  assert config_lib.add_fid_evaluator(config, 30, every_kimg=1.0) == "fid30"
  config_lib.validate(config)
  g, d = models.build_models(config)
  shapes = jax.eval_shape(lambda: steps.create_train_state(config, g, d))
  state = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
  proj = np.random.default_rng(13).standard_normal((8, 16 * 16 * 3)) / 3
  fade = {"amount": 0.0}  # how far samples are faded to grey: the "generator's" quality

  def sample_fn(params, g_state, z, y):
    del params, g_state, y
    x = np.tanh(np.asarray(z) @ proj).reshape(-1, 16, 16, 3)
    return x * (1 - fade["amount"])

  real = ((np.tanh(np.random.default_rng(14).standard_normal((60, 8)) @ proj) + 1) * 127.5)
  real = real.reshape(-1, 16, 16, 3).round().astype(np.uint8)
  ev = evaluation.Evaluator.from_images(real, cache_dir=None, extractor=_ColourFeatures(),
                                      kid_subsets=5)
  logged = []
  logger = type("Logger", (), {"scalars": lambda self, step, v, console: logged.append(
      (step, v))})()
  info = type("Info", (), {"images": real, "num_classes": 0})()

  (fid30,) = evaluation.evaluators_for_config(config, info, evaluator=ev)
  best = train._BestCheckpoint(str(tmp_path), config)  # pylint: disable=protected-access
  good = fid30.run(5, state.replace(step=jnp.int32(5)), logger, sample_fn)
  assert best.consider("fid30", good, state.replace(step=jnp.int32(5)))
  fade["amount"] = 0.7
  bad = fid30.run(10, state.replace(step=jnp.int32(10)), logger, sample_fn)
  assert not best.consider("fid30", bad, state.replace(step=jnp.int32(10)))
  assert good["num_fake"] == 30 and bad["fid"] > good["fid"]
  assert [s for s, _ in logged] == [5, 10] and "fid30/fid" in logged[0][1]
  assert "fid30/num_real" not in logged[0][1]
  assert best.ckpt.all_steps() == [5]
  assert best.ckpt.read_meta()["fid30/fid"] == pytest.approx(good["fid"])
  best.ckpt.close()
  # A resumed run knows the best FID so far.
  resumed = train._BestCheckpoint(str(tmp_path), config)  # pylint: disable=protected-access
  assert resumed.value == pytest.approx(good["fid"])
  resumed.ckpt.close()


def test_importing_evaluate_defines_no_flags():
  """train.py imports it under gemgan.main, which already defines --workdir."""
  code = ("from absl import flags; flags.DEFINE_string('workdir', None, ''); "
          "import gemgan.evaluate; assert 'num_samples' not in flags.FLAGS")
  subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_evaluate_rejects_one_fid_inf_point_before_sampling():
  out = subprocess.run([sys.executable, "-m", "gemgan.evaluate", "--workdir=/nonexistent",
                        "--fid_inf_points=1"], cwd=REPO_ROOT, capture_output=True, text=True)
  assert out.returncode != 0
  assert out.stderr.strip().splitlines()[-1] == (
      "--fid_inf_points must be 0 (off) or >= 2 subset sizes, got 1")


def test_inception_progress_shows_rate_and_eta():
  assert inception.progress(100, 400, 20.0) == "100/400 images, 5.0 images/s, ETA 1:00"
  assert inception.progress(100, None, 20.0) == "100 images, 5.0 images/s"


def _fid_curve_module():
  spec = importlib.util.spec_from_file_location(
      "fid_curve", os.path.join(REPO_ROOT, "experiments", "fid_curve.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_fid_curve_keeps_earlier_curves_only_at_the_same_num_samples(tmp_path):
  fid_curve = _fid_curve_module()
  row = {"step": 781, "kimg": 100.0, "minutes": 1.5, "fid": 296.2, "num_fake": 1000}
  path = tmp_path / "fid_curve.json"
  path.write_text(json.dumps({"seed_dcgan": [row]}))
  assert fid_curve.earlier_curves(str(path), 1000, 0) == {"seed_dcgan": [row]}
  with pytest.raises(ValueError, match="'seed_dcgan' step 781 has 1000 samples, not "
                     "--num_samples=5000"):
    fid_curve.earlier_curves(str(path), 5000, 0)
  with pytest.raises(ValueError, match="has no FID_inf"):
    fid_curve.earlier_curves(str(path), 1000, 8)


def test_fid_curve_merges_a_shorter_run_into_the_earlier_curve_by_kimg():
  fid_curve = _fid_curve_module()
  earlier = [{"kimg": 300.0, "fid": 203.9}, {"kimg": 1000.0, "fid": 120.8}]
  new = [{"kimg": 100.0, "fid": 314.4}, {"kimg": 300.0, "fid": 205.0}]
  assert fid_curve.merge_rows(earlier, new) == [
      {"kimg": 100.0, "fid": 314.4}, {"kimg": 300.0, "fid": 205.0},
      {"kimg": 1000.0, "fid": 120.8}]


def test_fid_curve_finds_evaluated_steps_whose_checkpoints_are_gone(tmp_path):
  fid_curve = _fid_curve_module()
  (tmp_path / "eval").mkdir()
  for name in ("step_1250_n1000.json", "step_2500_n1000.json", "step_2500_n5000.json",
               "step_3750_n1000_inf8.json", "step_5000.json", "notes.txt"):
    (tmp_path / "eval" / name).write_text("{}")
  assert fid_curve.evaluated_steps(str(tmp_path), 1000) == [1250, 2500]
  assert fid_curve.evaluated_steps(str(tmp_path), 1000, 8) == [3750]
  assert fid_curve.evaluated_steps(str(tmp_path), 5000) == [2500]
  assert fid_curve.evaluated_steps(str(tmp_path / "no_run"), 1000) == []
