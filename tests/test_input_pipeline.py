"""input_pipeline: batch_indices, load_dataset, and the tf.data iterator."""
import itertools
import logging

import jax
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from gemgan import config_lib
from gemgan import input_pipeline
from gemgan.datasets import gem_render

N = 40  # tiny synthetic set: 40 pictures of 32 px


def _config(data_dir, **overrides):
  c = config_lib.base_config()
  c.data.name = "synthetic_gems"
  c.data.image_size = 32
  c.data.num_examples = N
  c.data.data_dir = str(data_dir)
  c.batch_size = 6
  c.n_critic = 2
  for k, v in overrides.items():
    node = c
    *path, last = k.split(".")
    for p in path:
      node = node[p]
    node[last] = v
  return c


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="module")
def info(data_dir):
  return input_pipeline.load_dataset(_config(data_dir))


def _take(iterator, n):
  return list(itertools.islice(iterator, n))


# ------------------------------------------------------------ batch_indices


def test_batch_indices_shapes_and_epochs():
  idx, flip = input_pipeline.batch_indices(0, 0, 4, 10, batches_per_step=3)
  assert idx.shape == flip.shape == (3, 4)
  assert idx.dtype == np.int32 and flip.dtype == bool
  # Three steps are 36 positions: epochs 0-2, each a permutation of all 10 examples.
  stream = np.concatenate([input_pipeline.batch_indices(0, s, 4, 10, 3)[0].ravel()
                           for s in range(3)])
  for e in range(3):
    assert sorted(stream[10 * e:10 * e + 10]) == list(range(10))
  assert (stream[:10] != stream[10:20]).any()  # a new order each epoch


def test_batch_indices_is_one_stream_however_it_is_cut():
  """Step s of (B=4, k=3) == step s of (B=12, k=1) == steps 3s..3s+2 of (B=4, k=1)."""
  for step in (0, 1, 7, 123_456_789):
    a, fa = input_pipeline.batch_indices(5, step, 4, 10, 3)
    b, fb = input_pipeline.batch_indices(5, step, 12, 10, 1)
    c = [input_pipeline.batch_indices(5, 3 * step + i, 4, 10) for i in range(3)]
    np.testing.assert_array_equal(a.ravel(), b.ravel())
    np.testing.assert_array_equal(fa.ravel(), fb.ravel())
    np.testing.assert_array_equal(a, np.concatenate([x[0] for x in c]))
    np.testing.assert_array_equal(fa, np.concatenate([x[1] for x in c]))
    assert ((0 <= a) & (a < 10)).all()


def test_batch_indices_batch_bigger_than_dataset():
  idx, _ = input_pipeline.batch_indices(0, 2, 8, 3)
  assert idx.shape == (1, 8) and set(idx.ravel()) <= {0, 1, 2}
  # Positions 16..23 span epochs 5 (16, 17), 6 (18..20) and 7 (21..23).
  assert sorted(idx[0, 2:5]) == [0, 1, 2] and sorted(idx[0, 5:8]) == [0, 1, 2]


def test_batch_indices_seeded():
  a = input_pipeline.batch_indices(0, 3, 16, 100, 2)
  b = input_pipeline.batch_indices(0, 3, 16, 100, 2)
  c = input_pipeline.batch_indices(1, 3, 16, 100, 2)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  assert (a[0] != c[0]).any()
  input_pipeline.batch_indices(-3, 0, 4, 10)  # any int seed works
  flips = np.concatenate([input_pipeline.batch_indices(0, s, 100, 1000)[1].ravel()
                          for s in range(10)])
  assert 0.45 < flips.mean() < 0.55


def test_batch_indices_rejects_empty():
  with pytest.raises(ValueError, match="num_examples"):
    input_pipeline.batch_indices(0, 0, 4, 0)


# -------------------------------------------------------------- load_dataset


def test_load_dataset(info, data_dir):
  assert info.name == "synthetic_gems/32_n40" and info.split == "train"
  assert info.num_examples == N and info.num_classes == len(gem_render.KINDS)
  assert info.class_names == list(gem_render.KINDS)
  assert info.image_shape == (32, 32, 3)
  assert info.images.shape == (N, 32, 32, 3) and info.images.dtype == np.uint8
  assert info.labels.shape == (N,) and info.labels.dtype == np.int32
  # The same pictures as the renderer made (TFDS stores them in its own order).
  ref, ref_labels = gem_render.render(0, 0, N, 32)
  order = sorted(range(N), key=lambda i: info.images[i].tobytes())
  ref_order = sorted(range(N), key=lambda i: ref[i].tobytes())
  np.testing.assert_array_equal(info.images[order], ref[ref_order])
  np.testing.assert_array_equal(info.labels[order], ref_labels[ref_order])
  # Loading again reuses the prepared data and gives the same order.
  again = input_pipeline.load_dataset(_config(data_dir))
  np.testing.assert_array_equal(again.images, info.images)


def test_tf_sees_no_gpu():
  assert tf.config.get_visible_devices("GPU") == []


def test_gemstones_trains_on_all_splits_and_warns_on_a_changed_input(tmp_path, caplog):
  for rel in ("train/Agate/a.png", "train/Agate/b.png", "test/Agate/c.png", "test/Beryl/d.png"):
    path = tmp_path / "kaggle" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (len(rel), 90, 30)).save(path)
  config = _config(tmp_path / "data", **{"data.name": "gemstones",
                                         "data.manual_dir": str(tmp_path / "kaggle")})
  info = input_pipeline.load_dataset(config)
  assert info.name == "gemstones/32" and info.split == "test+train"
  assert info.num_examples == 4 and info.class_names == ["Agate", "Beryl"]
  assert sorted(info.labels) == [0, 0, 0, 1] and info.images.shape == (4, 32, 32, 3)
  config.data.manual_dir = str(tmp_path / "elsewhere")
  with caplog.at_level(logging.WARNING):
    input_pipeline.load_dataset(config)  # reuses the prepared data, says so
  assert "was prepared from" in caplog.text and "kaggle" in caplog.text


def test_gemstones_missing_manual_dir_is_a_clear_error(tmp_path):
  config = _config(tmp_path / "data", **{"data.name": "gemstones",
                                         "data.manual_dir": str(tmp_path / "missing")})
  with pytest.raises(FileNotFoundError, match="missing"):
    input_pipeline.load_dataset(config)


# ------------------------------------------------------------------ iterator


def _expected(config, info, step, lo=0, hi=None):
  idx, flip = input_pipeline.batch_indices(config.seed, step, config.batch_size,
                                           info.num_examples, config.n_critic)
  idx, flip = idx[:, lo:hi], flip[:, lo:hi] & config.data.random_flip
  x = info.images[idx].astype(np.float32)
  x = np.where(flip[..., None, None, None], x[..., ::-1, :], x)
  return x / 127.5 - 1.0, info.labels[idx]


def test_iterator_batches_match_batch_indices(info, data_dir):
  config = _config(data_dir)
  batches = _take(input_pipeline.create_train_iterator(config, info), 4)
  for step, batch in enumerate(batches):
    assert batch["image"].shape == (2, 6, 32, 32, 3) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (2, 6) and batch["label"].dtype == np.int32
    assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    image, label = _expected(config, info, step)
    np.testing.assert_array_equal(batch["image"], image)
    np.testing.assert_array_equal(batch["label"], label)
  # Some of those were flipped (the reference applied the flips).
  flips = np.stack([input_pipeline.batch_indices(0, s, 6, N, 2)[1] for s in range(4)])
  assert flips.any() and not flips.all()


def test_iterator_matches_the_on_device_path(info, data_dir):
  """The train loop's gather (steps.images_from_indices) gives the same batch."""
  steps = pytest.importorskip("gemgan.steps")
  config = _config(data_dir)
  batch = next(input_pipeline.create_train_iterator(config, info, start_step=5))
  idx, flip = input_pipeline.batch_indices(config.seed, 5, config.batch_size, N, config.n_critic)
  on_device = np.asarray(steps.images_from_indices(jax.numpy.asarray(info.images), idx, flip))
  # Same examples and flips; XLA may turn x / 127.5 into x * (1 / 127.5): 1 ulp.
  np.testing.assert_allclose(batch["image"], on_device, rtol=0, atol=2.5e-7)


def test_no_flip_when_disabled(info, data_dir):
  config = _config(data_dir, **{"data.random_flip": False})
  batch = next(input_pipeline.create_train_iterator(config, info))
  idx, _ = input_pipeline.batch_indices(0, 0, 6, N, 2)
  np.testing.assert_array_equal(batch["image"], info.images[idx] / np.float32(127.5) - 1)


def test_resume_from_step_sees_the_same_batches(info, data_dir):
  config = _config(data_dir)
  unbroken = _take(input_pipeline.create_train_iterator(config, info), 9)
  resumed = _take(input_pipeline.create_train_iterator(config, info, start_step=6), 3)
  for a, b in zip(unbroken[6:], resumed):
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["label"], b["label"])
  other_seed = next(input_pipeline.create_train_iterator(_config(data_dir, seed=1), info))
  assert (other_seed["label"] != unbroken[0]["label"]).any() or (
      other_seed["image"] != unbroken[0]["image"]).any()


def test_each_process_takes_its_slice_of_the_global_batch(info, data_dir, monkeypatch):
  config = _config(data_dir)
  whole = next(input_pipeline.create_train_iterator(config, info))
  monkeypatch.setattr(jax, "process_count", lambda: 3)
  parts = []
  for p in range(3):
    monkeypatch.setattr(jax, "process_index", lambda p=p: p)
    parts.append(next(input_pipeline.create_train_iterator(config, info)))
  assert parts[0]["image"].shape == (2, 2, 32, 32, 3)
  np.testing.assert_array_equal(np.concatenate([p["image"] for p in parts], axis=1),
                                whole["image"])
  np.testing.assert_array_equal(np.concatenate([p["label"] for p in parts], axis=1),
                                whole["label"])
  monkeypatch.setattr(jax, "process_count", lambda: 4)
  with pytest.raises(ValueError, match="divisible"):
    input_pipeline.create_train_iterator(config, info)


def test_streaming_when_too_big_for_memory(data_dir, monkeypatch):
  monkeypatch.setattr(input_pipeline, "IN_MEMORY_MAX_BYTES", 0)
  config = _config(data_dir)
  info = input_pipeline.load_dataset(config)
  assert info.images is None and info.labels is None and info.num_examples == N
  first = _take(input_pipeline.create_train_iterator(config, info), 4)
  again = _take(input_pipeline.create_train_iterator(config, info), 4)
  resumed = _take(input_pipeline.create_train_iterator(config, info, start_step=2), 2)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a["image"], b["image"])
  for a, b in zip(first[2:], resumed):
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["label"], b["label"])
  batch = first[0]
  assert batch["image"].shape == (2, 6, 32, 32, 3) and batch["label"].shape == (2, 6)
  assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
  # 24 draws cover most of the 40 pictures (a shuffle, not the same one again).
  seen = np.concatenate([b["image"].reshape(-1, 32 * 32 * 3) for b in first])
  assert len(np.unique(seen, axis=0)) > 12
