"""Improved precision and recall (Kynkäänniemi et al. 2019) on feature vectors.

Each set's manifold is the union of balls around its points with radius the
distance to the k-th nearest other point of the same set. Precision: the
fraction of fake points inside the real manifold; recall: the fraction of
real points inside the fake manifold. gemgan applies it to the FID Inception
pool features (the paper used VGG-16), as torch-fidelity does.
`density_coverage.prdc` computes these and density/coverage from shared
distance matrices.
"""
from typing import Sequence

import numpy as np


def pairwise_distances(x: np.ndarray, y: np.ndarray, dtype=np.float32) -> np.ndarray:
  """Euclidean distances [len(x), len(y)] through one matrix product in `dtype`.

  Both sets are first centred on x's mean (distances do not change), which
  keeps |x|^2 + |y|^2 - 2 x.y from cancelling: in float32 the distances of
  Inception features are then within 1e-5 relative of float64's
  (tests/test_metrics.py), in half the time.
  """
  x = np.asarray(x, np.float64)
  centre = x.mean(axis=0)
  x = (x - centre).astype(dtype)
  y = (np.asarray(y, np.float64) - centre).astype(dtype)
  sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * (x @ y.T)
  return np.sqrt(np.maximum(sq, 0))


def radii_from_distances(d: np.ndarray, ks: Sequence[int]) -> list[np.ndarray]:
  """k-th nearest-neighbour distance of each row of a self-distance matrix, for each k."""
  if len(d) <= max(ks):
    raise ValueError(f"need more than k={max(ks)} points, got {len(d)}")
  part = np.partition(d, sorted(set(ks)), axis=1)  # column 0 is the point itself
  return [part[:, k] for k in ks]


def knn_radii_many(features: np.ndarray, ks: Sequence[int]) -> list[np.ndarray]:
  """`knn_radii` for several k from one distance matrix (P/R's k=3, density's k=5)."""
  if len(features) <= max(ks):
    raise ValueError(f"need more than k={max(ks)} points, got {len(features)}")
  return radii_from_distances(pairwise_distances(features, features), ks)


def knn_radii(features: np.ndarray, k: int = 3) -> np.ndarray:
  """Distance from each point to its k-th nearest neighbour in the same set (self excluded)."""
  return knn_radii_many(features, [k])[0]


def precision_from_distances(d: np.ndarray, real_radii: np.ndarray,
                             fake_radii: np.ndarray) -> tuple[float, float]:
  """(precision, recall) from fake-real distances d [fake, real] and both sets' radii."""
  precision = np.mean((d <= real_radii[None, :]).any(axis=1))
  recall = np.mean((d <= fake_radii[:, None]).any(axis=0))
  return float(precision), float(recall)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3,
                     real_radii=None) -> tuple[float, float]:
  """(precision, recall) of `fake` against `real`; pass cached `knn_radii(real, k)` to skip it."""
  real_radii = knn_radii(real, k) if real_radii is None else real_radii
  return precision_from_distances(pairwise_distances(fake, real), real_radii,
                                  knn_radii(fake, k))
