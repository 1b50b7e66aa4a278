r"""How noisy is the per-class FID floor on the real gem photos? Over classes and split seeds.

  PYTHONPATH=. python experiments/per_class/floor_noise.py [--image_size=96] [--seeds=5]
      [--classes=0]

Real features of `configs/hinge_sn.py:recommended`'s data (all classes: the
real-feature cache of `gemgan.evaluate`, so a later evaluation of such a run
reuses them; `--classes=N`: only the first N classes, uncached, for a quick
look on a loaded machine); then per split seed the per-class floors FID(A_c, B_c) (25 vs 25 photos),
their mean over the 88 classes, and the spread over classes; the spread of
each class' floor over seeds says how much one number moves by chance.
"""
import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

from configs import hinge_sn  # noqa: E402
from gemgan import evaluation  # noqa: E402
from gemgan import input_pipeline  # noqa: E402
from gemgan.metrics import inception  # noqa: E402
from gemgan.metrics import per_class  # noqa: E402


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--image_size", type=int, default=96)
  p.add_argument("--seeds", type=int, default=5)
  p.add_argument("--classes", type=int, default=0)
  p.add_argument("--out", default="")
  args = p.parse_args()
  config = hinge_sn.get_config("recommended")
  config.data.image_size = args.image_size
  config.data.manual_dir = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                        "data", "gemstones")
  info = input_pipeline.load_dataset(config)
  labels, c = info.labels, info.num_classes
  if args.classes:
    keep = labels < args.classes
    labels, c = labels[keep], args.classes
    feats = inception.FeatureExtractor(batch_size=10)(info.images[keep])
  else:
    feats = evaluation.evaluator_for_config(config, info.images).real_features
  floors = []
  for seed in range(args.seeds):
    a, b = per_class.split_halves(labels, c, seed)
    floors.append([per_class.fid_few_samples(feats[x], feats[y]) for x, y in zip(a, b)])
    f = np.array(floors[-1])
    print(f"seed {seed}: mean floor over {c} classes {f.mean():.1f}, std over classes "
          f"{f.std():.1f}, min {f.min():.1f} ({info.class_names[f.argmin()]}), max {f.max():.1f} "
          f"({info.class_names[f.argmax()]})", flush=True)
  floors = np.array(floors)  # [seeds, classes]
  means = floors.mean(1)
  per_class_sd = floors.std(0, ddof=1)
  summary = {"image_size": args.image_size, "num_classes": c, "num_images": len(labels), "seeds": args.seeds,
             "mean_floor_per_seed": means.round(2).tolist(),
             "mean_floor_sd_over_seeds": float(means.std(ddof=1)),
             "floor_sd_over_classes": float(floors.std(1).mean()),
             "class_floor_sd_over_seeds_median": float(np.median(per_class_sd)),
             "class_floor_sd_over_seeds_max": float(per_class_sd.max()),
             "class_floor_mean_range": [float(floors.mean(0).min()), float(floors.mean(0).max())]}
  print(json.dumps(summary, indent=1))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(summary, f, indent=1)


if __name__ == "__main__":
  main()
