"""`class_accuracy`: the gem classifier's top-1/top-5 on samples of each class in turn.

Key `classifier`: its .npz ("" = `gem_classifier.default_path(size)`).
Without a classifier trained on this data and size, reports why under
`class_accuracy.skipped` instead of a number (see `evaluation.class_accuracy`).
"""
from gemgan import evaluation
from gemgan.evaluators import base
from gemgan.evaluators import register
from gemgan.metrics import real_stats


@register("class_accuracy")
class ClassAccuracy(base.EvaluatorType):
  """`class_top1`, `class_top5` (higher is better) and the details under `class_accuracy`."""
  KEYS = {"classifier": ""}
  NEEDS_CLASSES = True

  def __call__(self, fakes):
    images_id = self.reals.cached("images_id",
                                  lambda: real_stats.fingerprint(self.reals.images))
    acc = evaluation.class_accuracy(base.AsSampler(fakes), images_id, self.num_samples,
                                    self.reals.seed, self.option("classifier"))
    out = {"class_accuracy": acc}
    if "top1" in acc:
      out["class_top1"], out["class_top5"] = acc["top1"], acc["top5"]
    return out

  def summary(self, m):
    if "class_top1" not in m:
      return f"skipped: {m['class_accuracy']['skipped']}"
    return f"top-1 {m['class_top1']:.3f}  top-5 {m['class_top5']:.3f}"
