r"""FID from fake features and KID, this tree's against an older checkout's, in one run.

  git worktree add /tmp/old 5195472   # the tree before the indicator-KID and X S1 X^T FID
  PYTHONPATH=. python experiments/inception_speed/metrics_ab.py [--old=/tmp/old]

Inception-like features (2048-d, non-negative, low-rank plus noise), 4,400
real and 1,000 fake: the sizes of `gemgan.evaluate --num_samples=1000` on the
gem photos. The old FID's cached root of S1 is cleared before each call, as
a fresh `gemgan.evaluate` process starts without it.
"""
import argparse
import importlib.util
import time

import numpy as np

from gemgan.metrics import fid as fid_new
from gemgan.metrics import kid as kid_new


def load(name: str, path: str):
  """A module from a file of another checkout, under its own name."""
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--old", default="/tmp/old", help="the older checkout")
  old = p.parse_args().old
  fid_old = load("fid_old", f"{old}/gemgan/metrics/fid.py")
  kid_old = load("kid_old", f"{old}/gemgan/metrics/kid.py")
  rng = np.random.default_rng(0)
  basis = rng.standard_normal((256, 2048)) * 0.05

  def features(n, shift):
    noise = rng.standard_normal((n, 2048)) * 0.2
    return np.maximum(rng.standard_normal((n, 256)) @ basis + noise + shift, 0).astype(np.float32)

  real, fake = features(4400, 0.3), features(1000, 0.33)
  stats = fid_new.feature_statistics(real)
  cases = (("FID old (eigh of S1, then [N, N])",
            lambda: fid_old.frechet_distance_to_features(*stats, fake)),
           ("FID new (X S1 X^T)", lambda: fid_new.frechet_distance_to_features(*stats, fake)),
           ("KID old (ix_ gathers)", lambda: kid_old.kernel_inception_distance(real, fake)),
           ("KID new (indicator products)", lambda: kid_new.kernel_inception_distance(real, fake)))
  for round_ in range(2):
    for name, fn in cases:
      fid_old._sqrt_cache.clear()  # pylint: disable=protected-access
      t = time.perf_counter()
      value = fn()
      print(f"round {round_} {name}: {value} in {time.perf_counter() - t:.2f} s", flush=True)


if __name__ == "__main__":
  main()
