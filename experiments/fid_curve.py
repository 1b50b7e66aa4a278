"""FID against kimg and against training minutes, from the checkpoints runs kept.

  python experiments/fid_curve.py --run=laptop=experiments/runs/laptop \
      --num_samples=1000 --out=experiments/results/campaign32

Evaluates every checkpoint of each run (or `--steps`, or a run's own
`name=workdir@step,step`) with `gemgan.evaluation`
(one Inception network, the real features cached; the same numbers as
`gemgan.evaluate --num_samples=N`, whose `eval/step_<N>.json` it reuses),
caching each result in the run's `eval/step_<N>_n<num_samples>[_inf<K>].json`
(`--fid_inf_points=K` adds FID_inf, FID extrapolated to infinitely many
samples, and plots it instead of FID at N). Writes
`<out>/fid_curve.json`, `<out>/fid_curve.md` (a table) and
`<out>/fid_curve.png`: FID against thousands of real images shown to the
critic, and against minutes of training read from the run's TensorBoard event
times (resumes add up; compile and evaluation pauses count). Minutes are this
machine's, so compare runs made on the same machine.

`--earlier=<out>/fid_curve.json` keeps the curves of an earlier call whose
workdirs are gone (another session's runs), beside the runs evaluated now;
its rows must be of the same `--num_samples`. A `--run` of an earlier run's
name adds its checkpoints to that curve (the same recipe and config on the
same machine, stopped at another kimg: a 100-kimg run of a recipe with no
length-dependent schedule is the first 100 kimg of a longer one).
"""
import argparse
import glob
import json
import os
import re
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

# Run as `python experiments/fid_curve.py`, the repository root is not on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gemgan import evaluation  # pylint: disable=g-import-not-at-top,wrong-import-position
from gemgan import input_pipeline
from gemgan.metrics import spectral
from gemgan import sampling
from gemgan import checkpointing


def training_minutes(workdir: str) -> dict[int, float]:
  """step -> minutes since the run first logged, summed over its event files."""
  from tensorflow.compat.v1 import train as tf_train  # pylint: disable=g-import-not-at-top
  out, offset = {}, 0.0
  for path in sorted(glob.glob(os.path.join(workdir, "tensorboard", "**", "events.*"),
                            recursive=True), key=os.path.getmtime):
    times = [(e.step, e.wall_time) for e in tf_train.summary_iterator(path)]
    if not times:
      continue
    start = times[0][1]
    for step, wall in times:
      if step:
        out[step] = offset + (wall - start) / 60
    offset += (times[-1][1] - start) / 60
  return out


def _minutes_at(minutes: dict[int, float], step: int) -> float:
  logged = sorted(minutes)
  if not logged:
    return float("nan")
  return float(np.interp(step, logged, [minutes[s] for s in logged]))


def _cached(path: str, by_evaluate: str, num_samples: int, fid_inf_points: int):
  """Our cached metrics, else gemgan.evaluate's of the same N, K and seed 0, else None."""
  if os.path.exists(path):
    return json.load(open(path))
  if os.path.exists(by_evaluate):
    metrics = json.load(open(by_evaluate))
    if (metrics.get("num_fake") == num_samples and metrics.get("seed") == 0
        and (not fid_inf_points or len(metrics.get("fid_inf_points", ())) == fid_inf_points)):
      return metrics
  return None


def evaluated_steps(workdir: str, num_samples: int, fid_inf_points: int = 0) -> list[int]:
  """Steps whose metrics at this N (and K) are cached in the run's eval/.

  A run keeps few checkpoints (max_to_keep), and an evaluated step's
  checkpoint may be gone since: its cached row still belongs on the curve.
  """
  inf = f"_inf{fid_inf_points}" if fid_inf_points else ""
  pattern = re.compile(rf"step_(\d+)_n{num_samples}{inf}\.json$")
  names = os.listdir(os.path.join(workdir, "eval")) if os.path.isdir(
      os.path.join(workdir, "eval")) else []
  return sorted(int(m.group(1)) for m in map(pattern.match, names) if m)


def evaluate_steps(workdir: str, num_samples: int, steps=None,
                   fid_inf_points: int = 0) -> list[dict]:
  """[{step, kimg, minutes, fid, ...}] for each kept or already evaluated checkpoint."""
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"), read_only=True)
  try:
    all_steps = set(ckpt.all_steps())
  finally:
    ckpt.close()
  all_steps = sorted(all_steps | set(evaluated_steps(workdir, num_samples, fid_inf_points)))
  missing = sorted(set(steps or ()) - set(all_steps))
  if missing:  # before any evaluation, so that nothing is spent on a typo
    raise ValueError(f"{workdir}: no checkpoint or cached evaluation at step(s) {missing}; "
                     f"kept or evaluated: {all_steps}")
  steps = [s for s in all_steps if not steps or s in steps]
  config = json.load(open(os.path.join(workdir, "config.json")))
  images_per_step = config["batch_size"] * config["n_critic"]
  minutes = training_minutes(workdir)
  ev, rows = None, []
  for step in steps:
    inf = f"_inf{fid_inf_points}" if fid_inf_points else ""
    path = os.path.join(workdir, "eval", f"step_{step}_n{num_samples}{inf}.json")
    metrics = _cached(path, os.path.join(workdir, "eval", f"step_{step}.json"), num_samples,
                      fid_inf_points)
    if metrics is None:
      gen = sampling.load_generator(workdir, step=step)
      if ev is None:
        info = input_pipeline.load_dataset(gen.config)
        ev = evaluation.evaluator_for_config(gen.config, info.images,
                                             fid_inf_points=fid_inf_points)
      samples = gen.generate(num_samples, seed=0)
      metrics = ev(samples)
      # Plaid and checkerboards as a number (gemgan/metrics/spectral.py).
      metrics["spectral_distance"] = spectral.spectral(info.images, samples)["spectral_distance"]
      os.makedirs(os.path.dirname(path), exist_ok=True)
      json.dump(metrics, open(path, "w"), indent=1)
    rows.append({"step": step, "kimg": step * images_per_step / 1000,
                 "minutes": _minutes_at(minutes, step), **metrics})
    print(f"{workdir} step {step}: kimg {rows[-1]['kimg']:.0f}, "
          f"{rows[-1]['minutes']:.1f} min, FID {metrics['fid']:.1f}", flush=True)
  return rows


def earlier_curves(path: str, num_samples: int, fid_inf_points: int) -> dict[str, list[dict]]:
  """The curves of an earlier fid_curve.json, checked to be of the same N and K."""
  curves = json.load(open(path))
  for name, rows in curves.items():
    for r in rows:
      if r.get("num_fake") != num_samples:
        raise ValueError(f"{path}: run {name!r} step {r['step']} has {r.get('num_fake')} "
                         f"samples, not --num_samples={num_samples}; FIDs of different N "
                         "do not compare")
      if fid_inf_points and "fid_inf" not in r:
        raise ValueError(f"{path}: run {name!r} step {r['step']} has no FID_inf")
  return curves


def merge_rows(earlier: list[dict], new: list[dict]) -> list[dict]:
  """One curve from two runs' rows, by kimg; a kimg in both keeps the new row."""
  by_kimg = {r["kimg"]: r for r in earlier}
  by_kimg.update({r["kimg"]: r for r in new})
  return [by_kimg[k] for k in sorted(by_kimg)]


def plot(curves: dict[str, list[dict]], path: str, floor: float = None,
         metric: str = "fid") -> None:
  fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
  # The default cycle repeats after 10 colours; tab20 keeps up to 20 runs apart.
  colours = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20").colors
  for i, (name, rows) in enumerate(curves.items()):
    for ax, x in zip(axes, ("kimg", "minutes")):
      ax.plot([r[x] for r in rows], [r[metric] for r in rows], "o-", label=name,
              color=colours[i % len(colours)])
  for ax, label in zip(axes, ("kimg (real images shown to the critic)",
                              "training minutes (this machine)")):
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
    if floor:
      ax.axhline(floor, color="gray", ls="--", lw=1, label="real vs real")
  axes[0].set_ylabel(("FID_inf" if metric == "fid_inf" else "FID") + " (lower is better)")
  # Outside the axes: with many runs an inside legend hides points.
  axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def table(curves: dict[str, list[dict]], num_samples: int) -> str:
  """Markdown: one row per evaluated checkpoint."""
  keys = ("fid", "kid_mean", "precision", "recall", "density", "coverage", "swd_mean",
          "spectral_distance")
  if any("fid_inf" in r for rows in curves.values() for r in rows):
    keys = ("fid_inf",) + keys
  lines = [f"FID etc. of {num_samples} samples against all real photos, per checkpoint.", "",
           "| run | step | kimg | minutes | " + " | ".join(keys) + " |",
           "| --- " * (4 + len(keys)) + "|"]
  for name, rows in curves.items():
    for r in rows:
      vals = [f"{r[k]:.4g}" if isinstance(r.get(k), float) else "-" for k in keys]
      lines.append(f"| {name} | {r['step']} | {r['kimg']:.0f} | {r['minutes']:.1f} | "
                   + " | ".join(vals) + " |")
  return "\n".join(lines) + "\n"


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--run", action="append", default=[],
                 help="name=workdir or name=workdir@step,step,... (its own --steps); repeat")
  p.add_argument("--earlier", default="",
                 help="an earlier fid_curve.json: keep its runs (workdirs gone), same N")
  p.add_argument("--num_samples", type=int, default=1000)
  p.add_argument("--steps", default="", help="comma-separated steps; default: all kept")
  p.add_argument("--floor", type=float, default=None, help="real-vs-real FID to draw")
  p.add_argument("--fid_inf_points", type=int, default=0,
                 help="also FID_inf from this many subset sizes, and plot it")
  p.add_argument("--out", required=True)
  args = p.parse_args()
  if args.fid_inf_points < 0 or args.fid_inf_points == 1:
    p.error(f"--fid_inf_points must be 0 (off) or >= 2 subset sizes, got {args.fid_inf_points}")
  if not args.run and not args.earlier:
    p.error("nothing to plot: give --run (repeatable) and/or --earlier")
  parse_steps = lambda text: {int(s) for s in text.split(",") if s}
  curves = (earlier_curves(args.earlier, args.num_samples, args.fid_inf_points)
            if args.earlier else {})
  for spec in args.run:
    name, workdir = spec.split("=", 1)
    workdir, _, run_steps = workdir.partition("@")
    rows = evaluate_steps(workdir, args.num_samples, parse_steps(run_steps or args.steps),
                          args.fid_inf_points)
    curves[name] = merge_rows(curves.get(name, []), rows)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "fid_curve.json"), "w") as f:
    json.dump(curves, f, indent=1)
  with open(os.path.join(args.out, "fid_curve.md"), "w") as f:
    f.write(table(curves, args.num_samples))
  plot(curves, os.path.join(args.out, "fid_curve.png"), args.floor,
       "fid_inf" if args.fid_inf_points else "fid")
  print("wrote", os.path.join(args.out, "fid_curve.png"))


if __name__ == "__main__":
  main()
