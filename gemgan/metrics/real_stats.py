"""Inception features of a real image set, computed once and cached on disk.

The cache key is a readable name (dataset and resolution) plus hashes of the
exact pixels and of the weights file, so a changed dataset, preprocessing
or weights never reuses stale features. Files are written atomically.
"""
import hashlib
import json
import os
import re
from typing import Callable, Optional

from absl import logging
import numpy as np

from gemgan.metrics import inception


def default_cache_dir() -> str:
  """`$XDG_CACHE_HOME/gemgan/real_features` (default `~/.cache/...`)."""
  return os.path.join(os.path.dirname(inception.default_weights_path()), "real_features")


def fingerprint(images: np.ndarray) -> str:
  """Short content hash of an image array (shape, dtype and every pixel)."""
  h = hashlib.sha256(f"{images.shape}{images.dtype}".encode())
  h.update(np.ascontiguousarray(images).data)
  return h.hexdigest()[:16]


def cache_stem(name: str, images_id: str, weights_id: str, cache_dir: str = "") -> str:
  """Path without extension of one real set's cache files."""
  safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "real"
  return os.path.join(cache_dir or default_cache_dir(), f"{safe}_{images_id}_w{weights_id}")


def cached_features(stem: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
  """Features [N, 2048] from `<stem>.npz`, or `compute()`d and saved there."""
  path = stem + ".npz"
  if os.path.isfile(path):
    with np.load(path) as f:
      features = f["features"]
    logging.info("Real features: %d from cache %s", len(features), path)
    return features
  features = np.asarray(compute(), np.float32)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = stem + ".tmp.npz"
  np.savez(tmp, features=features)
  os.replace(tmp, path)
  logging.info("Real features: %d computed, cached in %s", len(features), path)
  return features


def cached_json(path: str, compute: Callable[[], dict]) -> dict:
  """A small JSON result (e.g. the real-vs-real floor), cached like the features."""
  if os.path.isfile(path):
    with open(path) as f:
      return json.load(f)
  value = compute()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump(value, f, indent=1)
  os.replace(path + ".tmp", path)
  return value


def real_features(images: np.ndarray, extractor: "inception.FeatureExtractor", name: str,
                  cache_dir: Optional[str] = "") -> tuple[np.ndarray, str]:
  """(features, cache stem) of uint8 real images; `cache_dir=None` disables the cache."""
  stem = cache_stem(name, fingerprint(images), extractor.weights_id, cache_dir or "")
  if cache_dir is None:
    return extractor(images), stem
  return cached_features(stem, lambda: extractor(images)), stem
