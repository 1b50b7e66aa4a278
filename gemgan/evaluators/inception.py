"""`inception`: FID, KID, precision/recall, density/coverage (and SWD) from one feature pass.

Keys: `swd` (also the pixel SWD, default True, as before types existed),
`fid_inf_points` (FID extrapolated to N = infinity from this many subset
sizes; 0: off). The metrics are `gemgan.evaluation.Evaluator`'s.
"""
from gemgan.evaluators import base
from gemgan.evaluators import register


@register("inception")
class InceptionMetrics(base.EvaluatorType):
  """Every Inception-feature metric of `num_samples` samples against the whole real set."""
  KEYS = {"swd": True, "fid_inf_points": 0}
  BEST_METRICS = ("fid", "kid_mean", "swd_mean")

  @classmethod
  def check(cls, spec, key):
    super().check(spec, key)
    points = spec.get("fid_inf_points", 0)
    base.require(points == 0 or points >= 2, f"{key}.fid_inf_points",
                 f"must be 0 (off) or >= 2 subset sizes, got {points}")

  def __call__(self, fakes):
    ev = self.reals.inception()
    features = fakes.features(ev.extractor, self.num_samples)
    images = fakes.images(self.num_samples) if self.option("swd") else None
    return ev(images, fake_features=features, swd=self.option("swd"),
              fid_inf_points=self.option("fid_inf_points"))

  def floor(self):
    return self.reals.inception().floor()

  def summary(self, m):
    return (f"FID {m['fid']:.2f}  KID {m['kid_mean']:.4f} ± {m['kid_std']:.4f}  "
            f"P {m['precision']:.3f}  R {m['recall']:.3f}  D {m['density']:.3f}  "
            f"C {m['coverage']:.3f}  SWD {m.get('swd_mean', float('nan')):.2f}")
