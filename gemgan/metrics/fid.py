"""Fréchet distance between Gaussians fitted to features (FID on Inception features).

Same arithmetic as pytorch-fid's `calculate_frechet_distance`: float64
statistics (`np.cov`, unbiased), `scipy.linalg.sqrtm` of the product, the
1e-6 diagonal offset when the product is singular, and the real part when
sqrtm returns a complex matrix with a negligible imaginary diagonal.
"""
from absl import logging
import numpy as np
from scipy import linalg


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """[N, D] features -> (mean [D], covariance [D, D]), both float64."""
  act = np.asarray(features, np.float64)
  if act.ndim != 2 or len(act) < 2:
    raise ValueError(f"need features [N >= 2, D], got shape {act.shape}")
  return np.mean(act, axis=0), np.cov(act, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
  """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

  Raises ValueError when sqrtm's result has an imaginary diagonal larger than
  1e-3 (as pytorch-fid does): the statistics are then not covariances.
  """
  mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
  sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f"mismatched statistics: means {mu1.shape} vs {mu2.shape}, "
                     f"covariances {sigma1.shape} vs {sigma2.shape}")
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
  code fits 15 sizes from 5k to 50k; each size here costs one sqrtm of a
  [D, D] product (seconds at D = 2048). The real side's bias (its fixed
  size) remains.
  """
  fake = np.asarray(fake_features)
  total = len(fake)
  sizes = np.unique(np.linspace(min_fraction * total, total, num_points).astype(int))
  if num_points < 2 or len(sizes) < 2 or sizes[0] < 2:
    raise ValueError(f"FID_inf needs >= 2 subset sizes of >= 2 samples; {total} samples, "
                     f"num_points {num_points}, min_fraction {min_fraction} give {sizes.tolist()}")
  rng = np.random.default_rng(seed)
  points = [(int(n), frechet_distance(real_mu, real_sigma,
                                      *feature_statistics(fake[rng.permutation(total)[:n]])))
            for n in sizes]
  slope, intercept = np.polyfit([1 / n for n, _ in points], [f for _, f in points], 1)
  return float(intercept), float(slope), points
