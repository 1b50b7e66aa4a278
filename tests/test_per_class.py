"""Per-class FID: the few-sample formula against scipy's, the halves, the floor."""
import numpy as np
import pytest

from gemgan.metrics import fid
from gemgan.metrics import per_class


def test_fid_few_samples_equals_the_sqrtm_formula():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((40, 6))
  y = rng.standard_normal((30, 6)) @ rng.standard_normal((6, 6)) + 0.5
  assert per_class.fid_few_samples(x, y) == pytest.approx(fid.fid_from_features(x, y), rel=1e-9)
  # Fewer samples than dimensions: still the sqrtm value (scipy is accurate at D = 64).
  x, y = rng.standard_normal((12, 64)), rng.standard_normal((10, 64)) * 2
  assert per_class.fid_few_samples(x, y) == pytest.approx(fid.fid_from_features(x, y), rel=1e-5)
  with pytest.raises(ValueError, match="need features"):
    per_class.fid_few_samples(x[:1], y)


def test_split_halves_are_disjoint_per_class_and_reject_tiny_classes():
  labels = np.repeat(np.arange(3), [10, 11, 4])
  a, b = per_class.split_halves(labels, 3, seed=1)
  for c in range(3):
    assert set(a[c]).isdisjoint(b[c]) and set(a[c]) | set(b[c]) == set(np.flatnonzero(labels == c))
    assert len(a[c]) - len(b[c]) in (0, 1)
  assert list(per_class.fake_counts(labels, 3, seed=1)) == [5, 5, 2]
  with pytest.raises(ValueError, match="class 2 has 3"):
    per_class.split_halves(np.repeat(np.arange(3), [10, 10, 3]), 3)


def test_per_class_fid_floor_and_a_wrong_class():
  rng = np.random.default_rng(2)
  centres = rng.standard_normal((3, 16)) * 4
  real_labels = np.repeat(np.arange(3), 40)
  real = centres[real_labels] + rng.standard_normal((120, 16))
  fake_labels = np.repeat(np.arange(3), 20)
  fake = centres[fake_labels] + rng.standard_normal((60, 16))
  fake[fake_labels == 2] = centres[0] + rng.standard_normal((20, 16))  # class 2 draws class 0
  out = per_class.per_class_fid(real, real_labels, fake, fake_labels, 3, class_names="abc")
  cls = out["classes"]
  assert set(cls) == {"a", "b", "c"} and cls["a"]["num_fake"] == 20
  assert cls["c"]["fid"] > 10 * cls["c"]["floor"]
  assert cls["a"]["fid"] < 2 * cls["a"]["floor"] + 5
  a, b = per_class.split_halves(real_labels, 3)
  assert cls["b"]["floor"] == pytest.approx(fid.fid_from_features(real[a[1]], real[b[1]]))
  assert out["intra_fid"] == pytest.approx(np.mean([v["fid"] for v in cls.values()]))
  with pytest.raises(ValueError, match="'c': 0 fake"):
    per_class.per_class_fid(real, real_labels, fake[:40], fake_labels[:40], 3,
                            class_names="abc")


def test_evaluate_per_class_metrics_with_a_toy_sampler():
  from gemgan import evaluation
  rng = np.random.default_rng(4)
  colours = rng.integers(0, 256, (3, 3))
  real_labels = np.repeat(np.arange(3), 8)
  noise = lambda n: rng.integers(-20, 21, (n, 4, 4, 3))  # noqa: E731
  real = np.clip(colours[real_labels][:, None, None] + noise(24), 0, 255).astype(np.uint8)
  extractor = lambda images: images.reshape(len(images), -1).astype(np.float64)  # noqa: E731

  class Sampler:  # draws class (c + shift) % 3 when asked for class c
    num_classes, shift = 3, 0

    def generate(self, num, seed, batch_size, labels):
      del seed, batch_size
      c = (labels + self.shift) % 3
      return np.clip(colours[c][:, None, None] + noise(num), 0, 255).astype(np.uint8)

  ev = evaluation.Evaluator(extractor(real), real, extractor)
  gen = Sampler()
  good = evaluation.per_class_metrics(gen, ev, real_labels, ["x", "y", "z"])
  gen.shift = 1
  bad = evaluation.per_class_metrics(gen, ev, real_labels, ["x", "y", "z"])
  assert [v["num_fake"] for v in good["classes"].values()] == [4, 4, 4]
  assert bad["intra_fid"] > 10 * good["intra_fid"]
  assert good["intra_fid_floor"] == bad["intra_fid_floor"]
  with pytest.raises(ValueError, match="one label per real feature"):
    evaluation.per_class_metrics(gen, ev, real_labels[:5], None)
