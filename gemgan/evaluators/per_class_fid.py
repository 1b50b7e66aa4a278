"""`per_class_fid`: each class' FID against its own real-vs-real floor (conditional models).

Generates |B_c| samples of each class c (about half its photos, the floor's
N; `num_samples` does not change it). See `gemgan.metrics.per_class`.
"""
from gemgan import evaluation
from gemgan.evaluators import base
from gemgan.evaluators import register


@register("per_class_fid")
class PerClassFID(base.EvaluatorType):
  """`intra_fid` (mean over classes), its floor, and every class under `per_class`."""
  BEST_METRICS = ("intra_fid",)
  NEEDS_CLASSES = True

  def __call__(self, fakes):
    out = evaluation.per_class_metrics(base.AsSampler(fakes), self.reals.inception(),
                                       self.reals.labels, self.reals.class_names,
                                       self.reals.seed)
    return {"intra_fid": out["intra_fid"], "intra_fid_floor": out["intra_fid_floor"],
            "per_class": out}

  def summary(self, m):
    return f"intra-class FID {m['intra_fid']:.1f} (floor {m['intra_fid_floor']:.1f})"
