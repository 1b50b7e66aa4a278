r"""Time of the feature metrics of one evaluation, before and after, in one run.

  PYTHONPATH=. python experiments/inception_speed/metrics_bench.py [--real=4400] [--fake=1000]

Inception-like features (2048-d, non-negative, low-rank structure plus
noise; real and fake slightly apart) at the sizes of `gemgan.evaluate
--num_samples=1000` on the gem photos. FID: pytorch-fid's `sqrtm` method
(`frechet_distance_sqrtm`) against the eigendecomposition form, the real
side's root computed once (first call) then cached (second call).
"""
import argparse
import time

import numpy as np

from gemgan.metrics import fid


def inception_like(rng, n: int, basis: np.ndarray, shift: float) -> np.ndarray:
  noise = rng.standard_normal((n, basis.shape[1])) * 0.2
  return np.maximum(rng.standard_normal((n, len(basis))) @ basis + noise + shift,
                    0).astype(np.float32)


def timed(fn):
  t = time.perf_counter()
  value = fn()
  return value, time.perf_counter() - t


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--real", type=int, default=4400)
  p.add_argument("--fake", type=int, default=1000)
  args = p.parse_args()
  rng = np.random.default_rng(0)
  basis = rng.standard_normal((256, 2048)) * 0.05
  real_f = inception_like(rng, args.real, basis, 0.3)
  fake_f = inception_like(rng, args.fake, basis, 0.35)
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


if __name__ == "__main__":
  main()
