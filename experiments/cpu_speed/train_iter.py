"""Whole training iteration, plain linen convs vs gemgan.ops FastConv*.

The project's own jitted `train_step` (gemgan/steps.py: critic update(s),
then the generator update, Adam, on-device uint8 data), for a config, with
`model.conv_impl` "xla" and "fast" built side by side and timed round-robin
in one process (the machine is shared; compare within a run; see
common.py). Images/s counts generator images (batch / iteration seconds),
like gemgan.benchmark.

  python -m experiments.cpu_speed.train_iter --config dcgan [--n_critic 1] \
      [--impls xla,fast] [--rounds 3] [--steps 2]

XLA flags are per process: prefix XLA_FLAGS=... to compare them.
"""
import argparse
import importlib.util
import os
import time

import jax

from gemgan import benchmark

from experiments.cpu_speed import common

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_config(name: str, preset: str = ""):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "configs", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def build(config):
  """(compiled step, state, batches, compile s, first step s, GFLOP/iteration, metrics),
  built by gemgan.benchmark (random images on the device)."""
  compiled, state, batch, compile_s, flops, _ = benchmark.compile_train_step(config, 256)
  batches = [batch(0), batch(1)]
  t = time.perf_counter()
  state, metrics = compiled(state, batches[0])
  jax.block_until_ready(metrics)
  first_s = time.perf_counter() - t
  return compiled, state, batches, compile_s, first_s, flops / 1e9, metrics


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", default="dcgan")
  parser.add_argument("--preset", default="")
  parser.add_argument("--n_critic", type=int, default=0, help="0: the config's")
  args = common.parse_timing_args(parser)
  runs = {}
  for impl in args.impls.split(","):
    config = load_config(args.config, args.preset)
    config.model.conv_impl = impl
    config.batch_size = args.batch
    if args.n_critic:
      config.n_critic = args.n_critic
    compiled, state, batches, compile_s, first_s, gflop, metrics = build(config)
    runs[impl] = dict(compiled=compiled, state=state, batches=batches)
    print(f"{impl}: compile {compile_s:.1f} s, first step {first_s:.1f} s, "
          f"{gflop:.1f} GFLOP/iteration (XLA cost analysis), "
          f"d_loss {float(metrics['d_loss']):.4f} g_loss {float(metrics['g_loss']):.4f}",
          flush=True)
    runs[impl]["gflop"] = gflop
  common.rounds(runs, args.rounds, args.steps, _call)
  common.report(f"{args.config} n_critic={config.n_critic} batch={args.batch}", runs, args.batch)


def _call(run):
  run["i"] = run.get("i", 0) + 1
  run["state"], metrics = run["compiled"](run["state"], run["batches"][run["i"] % 2])
  return metrics


if __name__ == "__main__":
  main()
