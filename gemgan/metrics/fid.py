"""Fréchet distance between Gaussians fitted to features (FID on Inception features).

Equal to pytorch-fid's `calculate_frechet_distance` (float64 statistics,
`np.cov`, unbiased) but without its `scipy.linalg.sqrtm` of the product: the
trace it needs is exact from symmetric eigendecompositions. With
S1 = U diag(l) U^T and A = S1^(1/2) = U diag(sqrt l) U^T, S1 S2 is similar to
A S2 A (= A^-1 (A S2 A) A when S1 is invertible, and by continuity
otherwise), which is symmetric PSD, so
Tr((S1 S2)^(1/2)) = sum sqrt(eig(A S2 A)). A depends on the real set only
and is cached, so an evaluation costs one eigvalsh of a [D, D] matrix, and
fewer samples than D one of [N, N] (`frechet_distance_to_features`;
experiments/inception_speed/README.md has the timings).
`frechet_distance_sqrtm` keeps pytorch-fid's method for comparison.
"""
import collections
import hashlib

from absl import logging
import numpy as np
from scipy import linalg

_SQRT_CACHE_SIZE = 4  # [D, D] float64 factors (32 MB each at D = 2048)
_sqrt_cache: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """[N, D] features -> (mean [D], covariance [D, D]), both float64."""
  act = np.asarray(features, np.float64)
  if act.ndim != 2 or len(act) < 2:
    raise ValueError(f"need features [N >= 2, D], got shape {act.shape}")
  return np.mean(act, axis=0), np.cov(act, rowvar=False)


def sqrt_psd(sigma: np.ndarray) -> np.ndarray:
  """The symmetric PSD square root of a covariance (rounding's negative eigenvalues -> 0)."""
  eigenvalues, vectors = np.linalg.eigh(sigma)
  return (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T


def cached_sqrt_psd(sigma: np.ndarray) -> np.ndarray:
  """`sqrt_psd`, remembered by content for the last few matrices (the real sets' S1)."""
  sigma = np.ascontiguousarray(sigma, np.float64)
  key = hashlib.blake2b(sigma.data, digest_size=16).hexdigest() + str(sigma.shape)
  if key in _sqrt_cache:
    _sqrt_cache.move_to_end(key)
    return _sqrt_cache[key]
  root = sqrt_psd(sigma)
  _sqrt_cache[key] = root
  while len(_sqrt_cache) > _SQRT_CACHE_SIZE:
    _sqrt_cache.popitem(last=False)
  return root


def trace_sqrt_psd(m: np.ndarray) -> float:
  """Tr(M^(1/2)) of a symmetric PSD matrix: the sum of its eigenvalues' roots.

  Eigenvalues within rounding of 0 (|l| <= n eps max l) count as 0: the
  rank-deficient covariances of N < D samples have D - N + 1 of them, and
  the roots of their +-1e-15 noise would add ~1e-5 to the trace.
  """
  eigenvalues = np.linalg.eigvalsh((m + m.T) / 2)  # symmetric up to rounding
  noise = len(m) * np.finfo(m.dtype).eps * max(float(eigenvalues[-1]), 0.0)
  return float(np.sqrt(eigenvalues[eigenvalues > noise]).sum())


def trace_sqrt_product(sqrt_sigma1: np.ndarray, sigma2: np.ndarray) -> float:
  """Tr((S1 S2)^(1/2)) = Tr((A S2 A)^(1/2)) with A = S1^(1/2) (`sqrt_psd`)."""
  return trace_sqrt_psd(sqrt_sigma1 @ sigma2 @ sqrt_sigma1)


def _checked(mu1, sigma1, mu2, sigma2):
  mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
  sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f"mismatched statistics: means {mu1.shape} vs {mu2.shape}, "
                     f"covariances {sigma1.shape} vs {sigma2.shape}")
  return mu1, sigma1, mu2, sigma2


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

  S1's square root is cached by content, so pass the fixed (real) set first.
  """
  mu1, sigma1, mu2, sigma2 = _checked(mu1, sigma1, mu2, sigma2)
  diff = mu1 - mu2
  tr_covmean = trace_sqrt_product(cached_sqrt_psd(sigma1), sigma2)
  return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def frechet_distance_to_features(mu1: np.ndarray, sigma1: np.ndarray,
                                 features2: np.ndarray) -> float:
  """`frechet_distance(mu1, sigma1, *feature_statistics(features2))`, cheaper for N2 < D.

  With X the centred features2 / sqrt(N2 - 1), S2 = X^T X, and S1 S2 =
  (S1 X^T) X has the nonzero eigenvalues of X S1 X^T (symmetric PSD): an
  [N2, N2] eigvalsh and no square root of S1 (~10x faster at 1000 samples
  of 2048-d features than S1's [D, D] eigh).
  """
  act = np.asarray(features2, np.float64)
  if act.ndim != 2 or len(act) < 2:
    raise ValueError(f"need features [N >= 2, D], got shape {act.shape}")
  mu2 = act.mean(axis=0)
  mu1, sigma1, _, _ = _checked(mu1, sigma1, mu2, np.zeros((len(mu2),) * 2))
  centred = (act - mu2) / np.sqrt(len(act) - 1)
  if len(act) >= act.shape[1]:
    return frechet_distance(mu1, sigma1, mu2, centred.T @ centred)
  tr_covmean = trace_sqrt_psd(centred @ sigma1 @ centred.T)
  diff = mu1 - mu2
  return float(diff.dot(diff) + np.trace(sigma1) + np.sum(centred * centred) - 2 * tr_covmean)


def frechet_distance_sqrtm(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                           sigma2: np.ndarray, eps: float = 1e-6) -> float:
  """pytorch-fid's method: `scipy.linalg.sqrtm` of S1 S2 (slow; kept as the reference).

  The 1e-6 diagonal offset when the product is singular, the real part when
  sqrtm returns a complex matrix with a negligible imaginary diagonal, and
  ValueError when that diagonal exceeds 1e-3 (not covariances).
  """
  mu1, sigma1, mu2, sigma2 = _checked(mu1, sigma1, mu2, sigma2)
  diff = mu1 - mu2
  # SciPy >= 1.16 returns the matrix alone (`disp` is deprecated, gone in 1.18).
  covmean = linalg.sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    logging.warning("FID: singular product; adding %g to the covariance diagonals", eps)
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"FID: sqrtm has an imaginary component {np.max(np.abs(covmean.imag))}")
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
  """FID between two feature sets [N1, D] and [N2, D]."""
  return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def fid_infinity(real_mu: np.ndarray, real_sigma: np.ndarray, fake_features: np.ndarray,
                 num_points: int = 8, min_fraction: float = 0.2,
                 seed: int = 0) -> tuple[float, float, list[tuple[int, float]]]:
  """FID extrapolated to infinitely many fake samples: (FID_inf, slope, [(n, FID_n)]).

  FID's bias in the number N of fake samples is linear in 1/N (Chong &
  Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to
  find them"), so the FIDs of random subsets at `num_points` sizes from
  `min_fraction * N` to N, fitted by least squares as FID_inf + slope / n,
  give the intercept: a number that compares across sample counts. Their
  code fits 15 sizes from 5k to 50k; each size here costs one eigvalsh of an
  [n, n] matrix (`frechet_distance_to_features`). The real side's bias (its fixed
  size) remains.
  """
  fake = np.asarray(fake_features)
  total = len(fake)
  sizes = np.unique(np.linspace(min_fraction * total, total, num_points).astype(int))
  if num_points < 2 or len(sizes) < 2 or sizes[0] < 2:
    raise ValueError(f"FID_inf needs >= 2 subset sizes of >= 2 samples; {total} samples, "
                     f"num_points {num_points}, min_fraction {min_fraction} give {sizes.tolist()}")
  rng = np.random.default_rng(seed)
  points = [(int(n), frechet_distance_to_features(real_mu, real_sigma,
                                                  fake[rng.permutation(total)[:n]]))
            for n in sizes]
  slope, intercept = np.polyfit([1 / n for n, _ in points], [f for _, f in points], 1)
  return float(intercept), float(slope), points
