"""`spectral`: distance of the samples' radially averaged power spectrum from the photos'.

Plaid and checkerboards as a number (`spectral_distance`, decades of power,
see `gemgan.metrics.spectral` for the formula) and as a picture (the two
spectra, under `spectrum`, plotted by the run report). numpy FFTs only.
"""
from gemgan.evaluators import base
from gemgan.evaluators import register
from gemgan.metrics import spectral as spectral_lib


@register("spectral")
class Spectral(base.EvaluatorType):
  """`spectral_distance` of num_samples samples against the whole real set."""
  BEST_METRICS = ("spectral_distance",)

  def _real(self):
    if self.reals.images is None:
      raise ValueError("the spectral score needs the real images in memory")
    return self.reals.images

  def __call__(self, fakes):
    real = self._real()
    real_log = self.reals.cached("spectral_log", lambda: spectral_lib.log_spectrum(real))
    return spectral_lib.spectral(real, fakes.images(self.num_samples), real_log)

  def floor(self):
    real = self._real()
    return self.reals.cached("spectral_floor", lambda: {
        "spectral_distance": spectral_lib.floor(real, self.reals.seed)})
