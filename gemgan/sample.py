"""Command line for sampling a checkpoint: grids, PNGs, latent walks.

  python -m gemgan.sample --workdir=DIR [--step=N] --num=64 --seed=0 --out=grid.png
  python -m gemgan.sample --workdir=DIR --num=1000 --out=pngs/ --batch_size=128
  python -m gemgan.sample --workdir=DIR --interpolate=5 --frames=20 --out=walk.gif
  python -m gemgan.sample --workdir=DIR --label=ruby --psi=0.7 --out=ruby.png
  python -m gemgan.sample --workdir=DIR --per_class=8 --out=classes.png

The library (Sampler, load_generator, write_animation) is gemgan.sampling.
A user's mistake (a workdir without checkpoints, an unknown class, an output
path that cannot be written) ends with one line and exit code 1 (gemgan.cli).
"""
import os

from gemgan import cli

cli.hush_native_logs()  # before TensorFlow loads

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import jax.numpy as jnp
import numpy as np

from gemgan import checkpointing
from gemgan import visualize
from gemgan.sampling import Sampler, load_generator, write_animation  # noqa: F401 (API)

# --- command line -----------------------------------------------------------

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS):
  """Defines the CLI's flags; only when run as a program (or on a test's own
  FlagValues), so importing this module never clashes with another entry
  point's flags."""
  fv = dict(flag_values=flag_values)
  flags.DEFINE_string("workdir", None, "Training workdir (holds checkpoints/).", **fv)
  flags.DEFINE_integer("step", None, "Checkpoint step; default: the latest complete one.",
                       **fv)
  flags.DEFINE_integer("num", 64, "Number of samples (grid / PNG folder).", **fv)
  flags.DEFINE_integer("seed", 0, "Latent seed: same seed, same pictures.", **fv)
  flags.DEFINE_string("out", None, "grid .png, a folder ending in '/', or (with "
                      "--interpolate) .gif/.mp4. Default: "
                      "<workdir>/generated/step_<N>_seed_<S>.(png|gif).", **fv)
  flags.DEFINE_integer("batch_size", 64, "Samples per generator call (memory bound).", **fv)
  flags.DEFINE_boolean("ema", True, "Use the EMA generator weights when the run kept them.",
                       **fv)
  flags.DEFINE_integer("ncols", None, "Grid columns (default: square).", **fv)
  flags.DEFINE_integer("interpolate", 0, "Latent points of a looping walk (0: no walk).", **fv)
  flags.DEFINE_integer("frames", 20, "Frames per leg of the walk.", **fv)
  flags.DEFINE_integer("walks", 1, "Walks side by side in each frame.", **fv)
  flags.DEFINE_float("fps", 20.0, "Animation frames per second.", **fv)
  flags.DEFINE_string("label", None, "Conditional models: one class, by name or index.", **fv)
  flags.DEFINE_integer("per_class", 0, "Conditional models: a grid with this many samples of "
                       "every class (one row each; column j shares its latent).", **fv)
  flags.DEFINE_float("psi", 1.0, "Truncation: scale z toward its mean (0 < psi <= 1).", **fv)
  cli.define_flags(flag_values)


def _default_out(workdir: str, step: int, seed: int, animated: bool) -> str:
  ext = "gif" if animated else "png"
  return os.path.join(workdir, "generated", f"step_{step}_seed_{seed}.{ext}")


# A user's mistake: no (intact) checkpoint, a bad class or number, an
# output path that cannot be written. Their message says it all.
_CLEAR_ERRORS = (checkpointing.CheckpointError, ValueError, OSError)


def run(args: flags.FlagValues) -> str:
  """Does what the parsed flags ask; returns the path written."""
  sampler = load_generator(args.workdir, args.step, use_ema=args.ema)
  out = args.out or _default_out(args.workdir, sampler.step, args.seed, args.interpolate > 0)
  kw = dict(batch_size=args.batch_size, psi=args.psi)
  if (args.label is not None or args.per_class) and not sampler.num_classes:
    raise app.UsageError("--label/--per_class need a class-conditional model")

  if args.interpolate:
    walk = sampler.walk(args.interpolate, args.frames, args.seed, args.walks, args.label, **kw)
    frames = np.stack([f[0] if args.walks == 1 else visualize.image_grid(f, args.ncols)
                       for f in walk])
    write_animation(out, frames, args.fps)
    logging.info("Wrote a %d-frame walk through %d points to %s", len(frames),
                 args.interpolate, out)
  elif args.per_class:
    classes = ([sampler.label_index(args.label)] if args.label is not None
               else range(sampler.num_classes))
    z = jnp.tile(sampler.latents(args.seed, np.arange(args.per_class)), (len(classes), 1))
    y = np.repeat(np.asarray(list(classes), np.int32), args.per_class)
    images = sampler.render(z, y, **kw)
    visualize.save_png(out, visualize.image_grid(images, args.per_class))
    logging.info("Wrote %d classes x %d samples to %s", len(classes), args.per_class, out)
  elif out.endswith(("/", os.sep)) or os.path.isdir(out):
    os.makedirs(out, exist_ok=True)
    labels = sampler.resolve_labels(args.num, args.label)
    index = 0
    for batch in sampler.iter_generate(args.num, args.seed, labels=labels, **kw):
      for image in batch:
        name = f"{index:06d}"
        if labels is not None:
          name += "_" + sampler.class_name(int(labels[index]))
        visualize.save_png(os.path.join(out, name + ".png"), image)
        index += 1
    logging.info("Wrote %d PNGs to %s", index, out)
  else:
    images = sampler.generate(args.num, args.seed, labels=args.label, **kw)
    visualize.save_png(out, visualize.image_grid(images, args.ncols))
    logging.info("Wrote a grid of %d samples to %s", args.num, out)
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.setup_logging(FLAGS.verbose)
  with cli.failing_clearly(*_CLEAR_ERRORS):
    out = run(FLAGS)
  print(out)


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
