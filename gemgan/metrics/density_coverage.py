"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics").

Precision/recall count a fake point as real-like if it falls in *any* real
k-NN ball, so one outlying real point with a huge ball inflates precision,
and recall builds balls around the fakes, so outlying fakes inflate it.
Density counts *how many* real balls hold each fake point (divided by k:
about 1 when the fakes follow the real distribution, above 1 when they
crowd the dense regions); coverage is the fraction of real points whose
own ball holds at least one fake, so it is built only from real balls.

Same comparisons as the authors' `prdc` package (strict `<`, k-NN distance
with the point itself excluded); the paper's default k is 5. Plain
functions of (real features, fake features), so any evaluator can call them.
"""
import numpy as np

from gemgan.metrics import precision_recall as pr_lib

DEFAULT_K = 5


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K,
                     real_radii=None) -> tuple[float, float]:
  """(density, coverage) of `fake` [M, D] against `real` [N, D].

  Pass cached `precision_recall.knn_radii(real, k)` as `real_radii` to skip
  the N x N distance matrix.
  """
  real = np.asarray(real)
  fake = np.asarray(fake)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"need features [N, D] and [M, D], got {real.shape} and {fake.shape}")
  if len(fake) == 0:
    raise ValueError("no fake features")
  real_radii = pr_lib.knn_radii(real, k) if real_radii is None else np.asarray(real_radii)
  if real_radii.shape != (len(real),):
    raise ValueError(f"real_radii: expected shape ({len(real)},), got {real_radii.shape}")
  return density_coverage_from_distances(pr_lib.pairwise_distances(fake, real), real_radii, k)


def density_coverage_from_distances(d: np.ndarray, real_radii: np.ndarray,
                                    k: int = DEFAULT_K) -> tuple[float, float]:
  """(density, coverage) from fake-real distances d [fake, real] and the real k-NN radii."""
  inside = d < real_radii[None, :]  # [fake, real]
  density = inside.sum(axis=1).mean() / k
  coverage = inside.any(axis=0).mean()
  return float(density), float(coverage)


def prdc(real: np.ndarray, fake: np.ndarray, pr_k: int = 3, dc_k: int = DEFAULT_K,
         real_radii=None) -> dict[str, float]:
  """Precision/recall (k = pr_k) and density/coverage (k = dc_k) sharing their distances.

  One [fake, real] and one [fake, fake] distance matrix serve all four, where
  the separate functions compute three and (without cached radii) two more.
  `real_radii`: cached `pr_lib.knn_radii_many(real, (pr_k, dc_k))`.
  """
  real, fake = np.asarray(real), np.asarray(fake)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"need features [N, D] and [M, D], got {real.shape} and {fake.shape}")
  pr_radii, dc_radii = (pr_lib.knn_radii_many(real, (pr_k, dc_k)) if real_radii is None
                        else real_radii)
  d = pr_lib.pairwise_distances(fake, real)
  out = dict(zip(("precision", "recall"), pr_lib.precision_from_distances(
      d, np.asarray(pr_radii), pr_lib.knn_radii(fake, pr_k))))
  out["density"], out["coverage"] = density_coverage_from_distances(d, np.asarray(dc_radii),
                                                                    dc_k)
  return out


def expected_coverage(num_real: int, num_fake: int, k: int = DEFAULT_K) -> float:
  """Coverage expected when real and fake come from one distribution (paper, Lemma 2).

  1 - prod_{i=1..k} (N - i) / (N + M - i): what a perfect generator scores at
  these set sizes (0.97 at N = M, k = 5), the reference a reader needs.
  """
  n, m = num_real, num_fake
  return float(1.0 - np.prod([(n - i) / (n + m - i) for i in range(1, k + 1)]))
