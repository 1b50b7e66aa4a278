r"""Time of the feature metrics of one evaluation, before and after, in one run.

  PYTHONPATH=. python experiments/inception_speed/metrics_bench.py [--real=4400] [--fake=1000]
      [--skip_fid]

Inception-like features (2048-d, non-negative, low-rank structure plus
noise; real and fake slightly apart) at the sizes of `gemgan.evaluate
--num_samples=1000` on the gem photos. FID: pytorch-fid's `sqrtm` method
(`frechet_distance_sqrtm`) against the eigendecomposition form, the real
side's root computed once (first call) then cached (second call). KID,
precision/recall and density/coverage: the float64 per-metric forms they
replaced (copied below) against `kid` and `density_coverage.prdc`, with the
real k-NN radii of a fake-sized real subset computed (as the Evaluator
does once per subset size, and the floor once).
"""
import argparse
import time

import numpy as np

from gemgan.metrics import density_coverage as dc_lib
from gemgan.metrics import fid
from gemgan.metrics import kid
from gemgan.metrics import precision_recall as pr_lib


def inception_like(rng, n: int, basis: np.ndarray, shift: float) -> np.ndarray:
  noise = rng.standard_normal((n, basis.shape[1])) * 0.2
  return np.maximum(rng.standard_normal((n, len(basis))) @ basis + noise + shift,
                    0).astype(np.float32)


def old_distances(x, y):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  return np.sqrt(np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None] - 2 * x @ y.T, 0))


def old_prdc(real, fake, pr_k=3, dc_k=5):
  """The float64 metrics as evaluation.py called them: five distance matrices."""
  r_pr, r_dc = (np.partition(old_distances(real, real), k, axis=1)[:, k] for k in (pr_k, dc_k))
  fake_radii = np.partition(old_distances(fake, fake), pr_k, axis=1)[:, pr_k]
  d = old_distances(fake, real)
  out = {"precision": np.mean((d <= r_pr[None]).any(1)),
         "recall": np.mean((d <= fake_radii[:, None]).any(0))}
  inside = old_distances(real, fake) < r_dc[:, None]
  out["density"], out["coverage"] = inside.sum(0).mean() / dc_k, inside.any(1).mean()
  return out


def timed(fn):
  t = time.perf_counter()
  value = fn()
  return value, time.perf_counter() - t


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--real", type=int, default=4400)
  p.add_argument("--fake", type=int, default=1000)
  p.add_argument("--skip_fid", action="store_true", help="skip the slow sqrtm")
  args = p.parse_args()
  rng = np.random.default_rng(0)
  basis = rng.standard_normal((256, 2048)) * 0.05
  real_f = inception_like(rng, args.real, basis, 0.3)
  fake_f = inception_like(rng, args.fake, basis, 0.35)
  if not args.skip_fid:
    time_fid(real_f, fake_f)
  time_kid_prdc(rng, real_f, fake_f)


def time_fid(real_f, fake_f):
  real, fake = fid.feature_statistics(real_f), fid.feature_statistics(fake_f)
  before, t_before = timed(lambda: fid.frechet_distance_sqrtm(*real, *fake))
  first, t_first = timed(lambda: fid.frechet_distance(*real, *fake))
  again, t_again = timed(lambda: fid.frechet_distance(*real, *fake))
  print(f"FID sqrtm (pytorch-fid) {before:.6f} in {t_before:.1f} s; eigh {first:.6f} in "
        f"{t_first:.1f} s (root computed), {t_again:.1f} s (root cached); "
        f"relative difference {abs(first - before) / before:.1e}", flush=True)
  direct, t_direct = timed(lambda: fid.frechet_distance_to_features(*real, fake_f))
  print(f"FID from fake features ([N, N] eigvalsh, root cached) {direct:.6f} in "
        f"{t_direct:.1f} s; relative difference {abs(direct - before) / before:.1e}", flush=True)


def time_kid_prdc(rng, real_f, fake_f):
  old, t_old = timed(lambda: kid.kernel_inception_distance(real_f, fake_f, dtype=np.float64,
                                                           max_kernel_entries=0))
  new, t_new = timed(lambda: kid.kernel_inception_distance(real_f, fake_f))
  print(f"KID float64 per subset {old[0]:.6e} ± {old[1]:.3e} in {t_old:.1f} s; float32 "
        f"whole kernel {new[0]:.6e} ± {new[1]:.3e} in {t_new:.1f} s", flush=True)
  real_sub = real_f[np.sort(rng.choice(len(real_f), len(fake_f), replace=False))]
  old, t_old = timed(lambda: old_prdc(real_sub, fake_f))
  new, t_new = timed(lambda: dc_lib.prdc(real_sub, fake_f))
  print(f"P/R/D/C float64, 5 matrices {old} in {t_old:.1f} s; float32 shared, 3 matrices "
        f"{new} in {t_new:.1f} s", flush=True)


if __name__ == "__main__":
  main()
