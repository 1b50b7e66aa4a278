"""Density and coverage against a direct loop over the paper's definitions."""
import numpy as np
import pytest

from gemgan.metrics import density_coverage as dc


def _brute_force(real, fake, k):
  """Naeem et al. 2020, eqs. for density and coverage, one point at a time."""
  radii = []
  for i, x in enumerate(real):
    others = sorted(np.sqrt(((x - y) ** 2).sum()) for j, y in enumerate(real) if j != i)
    radii.append(others[k - 1])  # NND_k(X_i): k-th nearest other real point
  count, covered = 0, 0
  for i, x in enumerate(real):
    hits = [np.sqrt(((x - y) ** 2).sum()) < radii[i] for y in fake]
    count += sum(hits)
    covered += any(hits)
  return count / (k * len(fake)), covered / len(real)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_density_coverage_match_brute_force(k):
  rng = np.random.default_rng(k)
  real = rng.standard_normal((40, 6))
  fake = rng.standard_normal((25, 6)) * 1.3 + 0.4
  want = _brute_force(real, fake, k)
  got = dc.density_coverage(real, fake, k)
  assert got == pytest.approx(want, abs=1e-12)
  radii = dc.pr_lib.knn_radii(real, k)
  assert dc.density_coverage(real, fake, k, real_radii=radii) == got


def test_identical_distributions_and_failure_modes():
  rng = np.random.default_rng(0)
  real = rng.standard_normal((600, 8))
  same = rng.standard_normal((600, 8))
  density, coverage = dc.density_coverage(real, same)
  assert density == pytest.approx(1.0, abs=0.1)
  assert coverage == pytest.approx(dc.expected_coverage(600, 600), abs=0.03)
  # Mode collapse: every fake near one real point -> dense there, covers little.
  collapsed = real[:1] + 0.01 * rng.standard_normal((600, 8))
  d_col, c_col = dc.density_coverage(real, collapsed)
  assert c_col < 0.05 and d_col > 1.0
  # One far real outlier has a huge ball; fakes far away land only in it.
  # Precision-style "any ball" counting would call them real-like; density does not.
  outlier_real = np.concatenate([real, [[40.0] * 8]])
  far = np.full((50, 8), 25.0) + rng.standard_normal((50, 8))
  d_far, c_far = dc.density_coverage(outlier_real, far)
  assert d_far <= 1 / 5 + 1e-9 and c_far <= 1 / len(outlier_real) + 1e-9


def test_expected_coverage_closed_form_and_bad_input():
  # N = M = 2, k = 1: the other real point is nearest with probability 1/3.
  assert dc.expected_coverage(2, 2, 1) == pytest.approx(1 - 1 / 3)
  with pytest.raises(ValueError, match=r"\[N, D\]"):
    dc.density_coverage(np.zeros((10, 3)), np.zeros((5, 4)))
  with pytest.raises(ValueError, match="more than k"):
    dc.density_coverage(np.zeros((5, 3)), np.zeros((5, 3)), k=5)
