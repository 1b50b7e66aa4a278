r"""Sample quality: FID, KID, precision/recall (Inception features) and SWD (pixels).

  # a run: samples from its checkpoint against the real data of its config
  python -m gemgan.evaluate --workdir=DIR [--num_samples=N] [--step=N]
  # two image sets (folders, searched recursively, or zips)
  python -m gemgan.evaluate --real=PATH --fake=PATH

Both print one JSON line (the run mode also writes it to
`DIR/eval/step_<N>.json`) with `fid`, `kid_mean`, `kid_std`, `precision`,
`recall`, `density`, `coverage` (Naeem et al. 2020, k=5; `coverage_expected` is
what identical distributions score at these sizes), `swd_<res>` per pyramid level and `swd_mean`, the set sizes, and
`floor`: the same metrics between two disjoint halves of the real set (what a
perfect generator would score at that N). Conditional runs add `per_class`:
each class' FID and its own real-vs-real floor (see `gemgan.metrics.per_class`),
and `class_accuracy`: top-1/top-5 of the gem classifier on samples of each class
in turn, beside chance and its held-out real accuracy (train it once with
`python -m gemgan.train_classifier --image_size=<size>`). FID is pytorch-fid's (same
weights, same resize, same formula); it is biased upward at small N, so
compare FIDs only at equal N, prefer KID for small sets, or add
`--fid_inf_points=8` for `fid_inf`, FID extrapolated to N = infinity.

The Inception weights are converted once with
`python -m gemgan.metrics.convert_inception`; the real set's features are
cached (see `gemgan.metrics.real_stats`).
"""
import json
import os

from absl import app
from absl import flags
from absl import logging

from gemgan.evaluation import evaluate_files, evaluate_run
from gemgan.metrics import inception
from gemgan.metrics import real_stats

FLAGS = flags.FLAGS


def define_flags():
  """The CLI's flags; defined only when run as a program, so importing this
  module (the training loop does) never clashes with another entry point's."""
  flags.DEFINE_string("workdir", None, "Run to evaluate (its checkpoint and config).")
  flags.DEFINE_integer("step", None, "Checkpoint step; default: the latest.")
  flags.DEFINE_integer("num_samples", 0, "Samples to generate; 0: config.eval.num_samples.")
  flags.DEFINE_string("real", None, "Folder or zip of real images.")
  flags.DEFINE_string("fake", None, "Folder or zip of generated images.")
  flags.DEFINE_string("weights", "", "Converted Inception npz; default: config.eval.weights, "
                      "else " + inception.default_weights_path())
  flags.DEFINE_string("cache_dir", "", "Real-feature cache; default: "
                      + real_stats.default_cache_dir())
  flags.DEFINE_bool("no_cache", False, "Neither read nor write cached real features.")
  flags.DEFINE_integer("batch_size", inception.BATCH_SIZE,
                       "Inception (and generator) batch size.")
  flags.DEFINE_integer("swd_size", 0, "--real/--fake: resolution for SWD; 0: the fake "
                       "images' size.")
  flags.DEFINE_integer("seed", 0, "Sampling seed (run mode) and metric subsets.")
  flags.DEFINE_integer("fid_inf_points", 0, "Also FID_inf: FID at this many subset sizes "
                       "(N/5 to N) extrapolated to infinitely many samples (Chong & Forsyth "
                       "2020), comparable across N; 0: off.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  f = FLAGS
  files_mode = f.real is not None or f.fake is not None
  if files_mode == (f.workdir is not None):
    raise app.UsageError("give either --workdir, or both --real and --fake")
  if f.fid_inf_points < 0 or f.fid_inf_points == 1:
    # Checked before minutes of sampling: a line needs two points.
    raise app.UsageError(f"--fid_inf_points must be 0 (off) or >= 2 subset sizes, "
                         f"got {f.fid_inf_points}")
  cache_dir = None if f.no_cache else f.cache_dir
  if files_mode:
    if not (f.real and f.fake):
      raise app.UsageError("--real and --fake go together")
    out = {"real": f.real, "fake": f.fake}
    out.update(evaluate_files(f.real, f.fake, f.weights, f.batch_size, f.swd_size, cache_dir,
                              f.seed, f.fid_inf_points))
  else:
    out = evaluate_run(f.workdir, f.num_samples, f.step, f.seed, f.weights, f.batch_size,
                       cache_dir, f.fid_inf_points)
    path = os.path.join(f.workdir, "eval", f"step_{out['step']}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
      json.dump(out, f, indent=1)
    logging.info("Wrote %s", path)
  print(json.dumps(out))


if __name__ == "__main__":
  define_flags()
  app.run(main)
