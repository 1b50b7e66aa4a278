"""Kernel Inception Distance (Bińkowski et al. 2018), as torch-fidelity computes it.

Unbiased MMD² with the cubic polynomial kernel k(x, y) = (x·y / D + 1)³,
averaged over random subsets of both sets; reports mean and std over
subsets. Unlike FID it is unbiased, so values at small N are comparable.
"""
import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma=None,
                      coef0: float = 1.0) -> np.ndarray:
  gamma = 1.0 / x.shape[1] if gamma is None else gamma
  return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
  """Unbiased MMD² of two equal-size samples from their kernel matrices.

  Within-set sums leave out the diagonal; the cross term keeps it (the
  torch-fidelity / MMD-GAN "unbiased" estimator).
  """
  m = k_xx.shape[0]
  within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
  return float(within - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(features1: np.ndarray, features2: np.ndarray,
                              num_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 2020) -> tuple[float, float]:
  """(mean, std) of the unbiased MMD² over `num_subsets` random subsets.

  Defaults are torch-fidelity's (100 subsets of 1000, RandomState(2020)); the
  subsets are drawn without replacement within each subset. Computed in
  float64. Raises ValueError when a set is smaller than `subset_size`.
  """
  n1, n2 = len(features1), len(features2)
  if subset_size < 2 or n1 < subset_size or n2 < subset_size:
    raise ValueError(f"KID subset size {subset_size} needs 2 <= it <= both set sizes "
                     f"({n1}, {n2})")
  f1 = np.asarray(features1, np.float64)
  f2 = np.asarray(features2, np.float64)
  rng = np.random.RandomState(seed)
  mmds = np.zeros(num_subsets)
  for i in range(num_subsets):
    x = f1[rng.choice(n1, subset_size, replace=False)]
    y = f2[rng.choice(n2, subset_size, replace=False)]
    mmds[i] = mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(x, y),
                            polynomial_kernel(y, y))
  return float(np.mean(mmds)), float(np.std(mmds))
