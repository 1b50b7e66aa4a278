"""`swd`: sliced Wasserstein distance of Laplacian-pyramid patches (pixels, no network).

Cheap enough to run often (e.g. every 10 kimg beside an FID every 100).
Compares the samples with a fixed random real subset of the same size, as
`gemgan.metrics.swd` (Karras et al. 2018) does.
"""
import numpy as np

from gemgan.evaluators import base
from gemgan.evaluators import register
from gemgan.metrics import swd as swd_lib


def _images(reals):
  if reals.images is None:
    raise ValueError("SWD needs the real images in memory")
  return reals.images


@register("swd")
class SWD(base.EvaluatorType):
  """`swd_<res>` per pyramid level and `swd_mean` (x1e3, as ProGAN reports it)."""
  BEST_METRICS = ("swd_mean",)

  def __call__(self, fakes):
    real = _images(self.reals)
    n = min(self.num_samples, len(real))
    idx = np.sort(np.random.default_rng(self.reals.seed).choice(len(real), n, replace=False))
    return swd_lib.swd(real[idx], fakes.images(self.num_samples), self.reals.seed)

  def floor(self):
    real = _images(self.reals)

    def halves():
      perm = np.random.default_rng(self.reals.seed + 1).permutation(len(real))
      half = len(real) // 2
      return swd_lib.swd(real[np.sort(perm[:half])], real[np.sort(perm[half:2 * half])],
                         self.reals.seed)

    return self.reals.cached("swd_floor", halves)
