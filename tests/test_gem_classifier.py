"""The gem classifier: its split, its top-k, that it learns, and the conditional-sample score."""
import numpy as np
import pytest

from gemgan import evaluation
from gemgan.metrics import gem_classifier

COLOURS = np.array([[230, 30, 30], [30, 200, 40], [40, 60, 230], [240, 230, 40]], np.uint8)


def _colour_images(labels, seed=0):
  """16 px images: a class' colour plus noise, on a random grey background corner."""
  rng = np.random.default_rng(seed)
  x = COLOURS[labels][:, None, None, :].astype(np.int32) + rng.integers(-40, 40, (len(labels), 16, 16, 3))
  x[:, :4, :4] = rng.integers(100, 200, (len(labels), 1, 1, 1))
  return np.clip(x, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def trained():
  labels = np.repeat(np.arange(4), 20)
  images = _colour_images(labels)
  train_idx, held_idx = gem_classifier.held_out_split(labels)
  clf = gem_classifier.train(images[train_idx], labels[train_idx], 4, epochs=8, batch_size=16)
  clf.meta = {"held_out_top1": 1.0, "held_out_top5": 1.0, "images_id": "abc"}
  return clf, images[held_idx], labels[held_idx]


def test_held_out_split_takes_a_fifth_of_every_class():
  labels = np.repeat(np.arange(5), [50, 50, 10, 3, 1])
  train_idx, held_idx = gem_classifier.held_out_split(labels)
  assert not set(train_idx) & set(held_idx)
  assert sorted(np.concatenate([train_idx, held_idx])) == list(range(len(labels)))
  assert np.bincount(labels[held_idx]).tolist() == [10, 10, 2, 1, 1]
  again, _ = gem_classifier.held_out_split(labels)
  np.testing.assert_array_equal(train_idx, again)


def test_topk_accuracy_by_hand():
  logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.3], [0.2, 0.3, 0.5]])
  labels = np.array([1, 2, 0])
  # row 0: label first; row 1: label second; row 2: label last.
  assert gem_classifier.topk_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
  assert gem_classifier.topk_accuracy(logits, labels, 2) == pytest.approx(2 / 3)
  assert gem_classifier.topk_accuracy(logits, labels, 3) == 1.0


def test_learns_colours_and_survives_save_load(trained, tmp_path):
  clf, images, labels = trained
  assert clf.accuracy(images, labels)["top1"] == 1.0
  path = str(tmp_path / "clf.npz")
  gem_classifier.save(path, clf)
  back = gem_classifier.load(path)
  np.testing.assert_allclose(back.logits(images), clf.logits(images), rtol=1e-6)
  assert back.meta["images_id"] == "abc" and back.num_classes == 4
  assert gem_classifier.load(str(tmp_path / "none.npz")) is None


class _StandIn:
  """A conditional 'generator' drawing each class' colour, or always class 0's."""
  num_classes, image_shape = 4, (16, 16, 3)

  def __init__(self, right: bool):
    self.right = right

  def generate(self, num, seed=0, labels=None, batch_size=64):
    return _colour_images(labels if self.right else np.zeros_like(labels), seed + 1)


def test_class_accuracy_scores_samples_by_their_label(trained, tmp_path):
  clf, _, _ = trained
  path = str(tmp_path / "clf.npz")
  gem_classifier.save(path, clf)
  good = evaluation.class_accuracy(_StandIn(True), "abc", 40, path=path)
  bad = evaluation.class_accuracy(_StandIn(False), "abc", 40, path=path)
  assert good["top1"] == 1.0 and good["chance"] == 0.25
  assert bad["top1"] == pytest.approx(0.25)  # only the class-0 quarter is right
  other = evaluation.class_accuracy(_StandIn(True), "other-data", 40, path=path)
  assert "retrain it with: python -m gemgan.train_classifier" in other["skipped"]
  none = evaluation.class_accuracy(_StandIn(True), "abc", 40, path=str(tmp_path / "x.npz"))
  assert "no gem classifier" in none["skipped"]
