"""Improved precision and recall (Kynkäänniemi et al. 2019) on feature vectors.

Each set's manifold is the union of balls around its points with radius the
distance to the k-th nearest other point of the same set. Precision: the
fraction of fake points inside the real manifold; recall: the fraction of
real points inside the fake manifold. gemgan applies it to the FID Inception
pool features (the paper used VGG-16), as torch-fidelity does.
"""
import numpy as np


def pairwise_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Euclidean distances [len(x), len(y)], float64, through one matrix product."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
  return np.sqrt(np.maximum(sq, 0.0))


def knn_radii(features: np.ndarray, k: int = 3) -> np.ndarray:
  """Distance from each point to its k-th nearest neighbour in the same set (self excluded)."""
  if len(features) <= k:
    raise ValueError(f"need more than k={k} points, got {len(features)}")
  d = pairwise_distances(features, features)
  return np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3,
                     real_radii=None) -> tuple[float, float]:
  """(precision, recall) of `fake` against `real`; pass cached `knn_radii(real, k)` to skip it."""
  real_radii = knn_radii(real, k) if real_radii is None else real_radii
  fake_radii = knn_radii(fake, k)
  d = pairwise_distances(fake, real)  # [fake, real]
  precision = np.mean((d <= real_radii[None, :]).any(axis=1))
  recall = np.mean((d <= fake_radii[:, None]).any(axis=0))
  return float(precision), float(recall)
