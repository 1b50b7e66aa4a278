r"""Sample quality: FID, KID, precision/recall (Inception features), SWD and spectrum (pixels).

  # a run: samples from its checkpoint against the real data of its config
  python -m gemgan.evaluate --workdir=DIR [--num_samples=N] [--step=N]
  # two image sets (folders, searched recursively, or zips)
  python -m gemgan.evaluate --real=PATH --fake=PATH [--evaluators=inception,spectral]

Both print one JSON line (the run mode also writes it to
`DIR/eval/step_<N>.json`) with `fid`, `kid_mean`, `kid_std`, `precision`,
`recall`, `density`, `coverage` (Naeem et al. 2020, k=5; `coverage_expected` is
what identical distributions score at these sizes), `swd_<res>` per pyramid
level and `swd_mean`, `spectral_distance` (the radially averaged power
spectrum of the samples against the photos', see `gemgan.metrics.spectral`;
both spectra under `spectrum`, for the run report), the set sizes, and
`floor`: the same metrics between two disjoint halves of the real set (what a
perfect generator would score at that N). Conditional runs add `per_class`:
each class' FID and its own real-vs-real floor (see `gemgan.metrics.per_class`),
and `class_accuracy`: top-1/top-5 of the gem classifier on samples of each class
in turn, beside chance and its held-out real accuracy (train it once with
`python -m gemgan.train_classifier --image_size=<size>`).
`--evaluators=inception,spectral,...` picks evaluator types by name from the
registry the training config uses (`gemgan/evaluators/`). FID is pytorch-fid's (same
weights, same resize, same formula); it is biased upward at small N, so
compare FIDs only at equal N, prefer KID for small sets, or add
`--fid_inf_points=8` for `fid_inf`, FID extrapolated to N = infinity.

The Inception weights are converted once with
`python -m gemgan.metrics.convert_inception`; the real set's features are
cached (see `gemgan.metrics.real_stats`). A user's mistake (an empty image
folder, a workdir without checkpoints, an output path that cannot be
written) ends with one line naming it and exit code 1.
"""
import json
import os

from gemgan import cli

cli.hush_native_logs()  # before TensorFlow loads

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from gemgan import checkpointing
from gemgan import config_lib
from gemgan import evaluators
from gemgan.evaluation import EvaluationError, evaluate_files, evaluate_run
from gemgan.metrics import inception
from gemgan.metrics import real_stats

FLAGS = flags.FLAGS

# A user's mistake, said in one line (cli.fail): no traceback.
_CLEAR_ERRORS = (EvaluationError, checkpointing.CheckpointError, config_lib.ConfigError,
                 inception.WeightsNotFoundError)


def define_flags():
  """The CLI's flags; defined only when run as a program, so importing this
  module (the training loop does) never clashes with another entry point's."""
  cli.define_flags()
  flags.DEFINE_string("workdir", None, "Run to evaluate (its checkpoint and config).")
  flags.DEFINE_integer("step", None, "Checkpoint step; default: the latest.")
  flags.DEFINE_integer("num_samples", 0, "Samples to generate; 0: config.eval.num_samples.")
  flags.DEFINE_string("real", None, "Folder or zip of real images.")
  flags.DEFINE_string("fake", None, "Folder or zip of generated images.")
  flags.DEFINE_list("evaluators", [], "Evaluator types (gemgan/evaluators/), e.g. "
                    "inception,spectral; default: inception,spectral, and per_class_fid,"
                    "class_accuracy for a conditional run.")
  flags.DEFINE_string("out", "", "Also write the JSON here; --workdir default: "
                      "DIR/eval/step_<N>.json.")
  flags.DEFINE_string("weights", "", "Converted Inception npz; default: config.eval.weights, "
                      "else " + inception.default_weights_path())
  flags.DEFINE_string("cache_dir", "", "Real-feature cache; default: "
                      + real_stats.default_cache_dir())
  flags.DEFINE_bool("no_cache", False, "Neither read nor write cached real features.")
  flags.DEFINE_integer("batch_size", inception.BATCH_SIZE,
                       "Inception (and generator) batch size.")
  flags.DEFINE_integer("swd_size", 0, "--real/--fake: resolution for SWD and the spectrum; "
                       "0: the fake images' size.")
  flags.DEFINE_integer("seed", 0, "Sampling seed (run mode) and metric subsets.")
  flags.DEFINE_integer("fid_inf_points", 0, "Also FID_inf: FID at this many subset sizes "
                       "(N/5 to N) extrapolated to infinitely many samples (Chong & Forsyth "
                       "2020), comparable across N; 0: off.")


def _check_flags(f) -> bool:
  """app.UsageError for flags that cannot work, before any work; True in files mode."""
  files_mode = f.real is not None or f.fake is not None
  if files_mode == (f.workdir is not None):
    raise app.UsageError("give either --workdir, or both --real and --fake")
  if files_mode and not (f.real and f.fake):
    raise app.UsageError("--real and --fake go together")
  if f.fid_inf_points < 0 or f.fid_inf_points == 1:
    # Checked before minutes of sampling: a line needs two points.
    raise app.UsageError(f"--fid_inf_points must be 0 (off) or >= 2 subset sizes, "
                         f"got {f.fid_inf_points}")
  for name in f.evaluators:
    try:
      evaluators.get(name)
    except KeyError as e:
      raise app.UsageError(f"--evaluators: {e.args[0]}") from None
  return files_mode


def _writable_dir(path: str, flag: str) -> None:
  """Makes the folder of an output file, or EvaluationError naming it (before the work)."""
  folder = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    raise EvaluationError(f"{flag}={path}: cannot write there ({e.strerror}: "
                          f"{e.filename or folder})") from None
  if not os.access(folder, os.W_OK):
    raise EvaluationError(f"{flag}={path}: cannot write there (no write permission on "
                          f"{folder})")


def _write(out: dict, path: str, flag: str) -> None:
  try:
    with open(path, "w") as fh:
      json.dump(out, fh, indent=1)
  except OSError as e:
    raise EvaluationError(f"{flag}={path}: cannot write there ({e.strerror})") from None
  logging.info("Wrote %s", path)


def evaluate(f, files_mode: bool) -> dict:
  """The evaluation the flags ask for, written where they say; the JSON dict."""
  cache_dir = None if f.no_cache else f.cache_dir
  types = tuple(f.evaluators) or None
  if f.out:
    _writable_dir(f.out, "--out")
  if files_mode:
    out = {"real": f.real, "fake": f.fake}
    out.update(evaluate_files(f.real, f.fake, f.weights, f.batch_size, f.swd_size, cache_dir,
                              f.seed, f.fid_inf_points, types or ("inception", "spectral")))
  else:
    default_dir = os.path.join(f.workdir, "eval")
    if not f.out:
      _writable_dir(os.path.join(default_dir, "step_N.json"), "--workdir")
    out = evaluate_run(f.workdir, f.num_samples, f.step, f.seed, f.weights, f.batch_size,
                       cache_dir, f.fid_inf_points, types)
    if not f.out:
      _write(out, os.path.join(default_dir, f"step_{out['step']}.json"), "--workdir")
  if f.out:
    _write(out, f.out, "--out")
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  cli.setup_logging(FLAGS.verbose)
  files_mode = _check_flags(FLAGS)
  with cli.failing_clearly(*_CLEAR_ERRORS):
    out = evaluate(FLAGS, files_mode)
  print(json.dumps(out))


if __name__ == "__main__":
  define_flags()
  app.run(main)
