"""The recipes' step variants, each against the PyTorch reference of the same variant.

  python -m experiments.cpu_speed.recipe_variants --recipe resnet:laptop \
      --variants base,fused,batched,fused+batched,diffaug,noema --rounds 5 --steps 3
  python -m experiments.cpu_speed.recipe_variants --recipe fastgan:laptop64 \
      --variants base,shared,diffaug,noema --rounds 3 --steps 2
  python -m experiments.cpu_speed.recipe_variants --variants base --rounds 3 --steps 3 \
      --xla_flag_sets ';--xla_cpu_enable_fast_math=true;--xla_cpu_prefer_vector_width=512'

Variants, combined with '+' (e.g. diffaug+fused+batched):
  base     the preset with DiffAugment off (as the README's torch ratios)
  fused    config.fused_critic: one critic pass over concat(real, fake)
  batched  config.batched_fakes: the n_critic fake batches from one G pass
  shared   config.share_fakes (n_critic 1: FastGAN)
  diffaug  the preset's own DiffAugment policy on (on both sides)
  noema    no EMA of G

Every variant is built first (gemgan's jitted step on random device-resident
images, via gemgan.benchmark; torch eager, benchmarks/torch_reference.py,
with gemgan's initial weights and the same variant), then all are timed
round-robin, `--steps` iterations each per round: on a shared machine only
same-round comparisons mean something. Per variant: img/s (generator images,
as gemgan.benchmark) of both, gemgan/torch, and each side's variant/base,
median and min over rounds of the per-round ratios. A variant the config
refuses prints its ConfigError; one torch lacks (FastGAN) times gemgan only.

XLA flags are per process: `--xla_flag_sets=...` (';'-separated sets, each
a space-separated XLA_FLAGS value, '' for gemgan's defaults of
gemgan/xla_cpu.py) runs this script once per set in a child process, one
after another, and tabulates them; torch, which the flags do not touch, is
the yardstick inside each child.
"""
import argparse
import collections
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

import jax
import numpy as np

from experiments.cpu_speed import train_iter
from gemgan import benchmark
from gemgan import config_lib

MODIFIERS = {
    "base": {},
    "fused": {"fused_critic": True},
    "batched": {"batched_fakes": True},
    "shared": {"share_fakes": True},
    "noema": {"ema.enabled": False},
    "diffaug": {},  # the preset's augment.policy, kept
}


def variant_config(recipe: str, variant: str):
  """The recipe's config ('file:preset') with `variant`'s changes."""
  name, _, preset = recipe.partition(":")
  c = train_iter.load_config(name, preset)
  parts = variant.split("+")
  for part in parts:
    if part not in MODIFIERS:
      raise ValueError(f"unknown variant part {part!r}; combine {sorted(MODIFIERS)} with '+'")
  if "diffaug" not in parts:
    c.augment.policy = ""
  for part in parts:
    for key, value in MODIFIERS[part].items():
      *parents, leaf = key.split(".")
      node = c
      for p in parents:
        node = node[p]
      node[leaf] = value
  config_lib.validate(c)
  return c


def build_gemgan(config):
  """(one() -> one blocking iteration of gemgan's compiled step, after a warm
  one; the initial networks on the host (the step donates the state); compile
  and first-iteration seconds)."""
  compiled, state, batch, compile_s, _, _ = benchmark.compile_train_step(
      config, num_images=256, count_flops=False)
  nets = jax.device_get((state.generator, state.critic))
  hlo = hlo_summary(compiled.as_text())
  one, _ = benchmark._stepper(compiled, state, [batch(100 + i) for i in range(2)])  # pylint: disable=protected-access
  t = time.perf_counter()
  one()
  return one, nets, hlo, compile_s, time.perf_counter() - t


def hlo_summary(text: str) -> str:
  """The optimized program's instruction, fusion and custom-call counts and a
  hash: whether an XLA flag changed the program itself, load or no load
  (flags acting in LLVM's code generation, vector width or fast math, leave
  it the same)."""
  lines = [line.split(", metadata=")[0] for line in text.splitlines()]
  ops = sum(" = " in line for line in lines)
  fusions = sum(" fusion(" in line for line in lines)
  calls = collections.Counter(line.split('custom_call_target="')[1].split('"')[0]
                              for line in lines if 'custom_call_target="' in line)
  digest = hashlib.sha1("\n".join(lines).encode()).hexdigest()[:10]
  return (f"HLO {digest}: {ops} instructions, {fusions} fusions, custom calls "
          f"{dict(calls) or 'none'}")


def build_torch(config, nets, memory_format="channels_last"):
  """one() for the torch eager reference of `config`, with gemgan's initial
  weights `nets`, after a warm iteration; (None, why) where the reference lacks it."""
  bt = benchmark.torch_reference()
  try:
    it = bt.TorchIteration(config, memory_format=memory_format)
  except ValueError as e:
    return None, str(e)
  g, d = nets
  bt.load_gemgan_variables(it.g, g.params, g.state)
  bt.load_gemgan_variables(it.d, d.params, d.state)
  size = config.data.image_size
  images = np.random.RandomState(0).uniform(
      -1, 1, (config.n_critic, config.batch_size, size, size, 3)).astype(np.float32)
  reals = [it.prepare(x) for x in images]
  one = lambda: it.step(reals)
  one()
  return one, ""


def build_all(recipe: str, variants: list[str]) -> dict:
  """{variant: {"config", "gemgan", "torch" (callables or None), "why"}}, printed as built."""
  runs = {}
  for v in variants:
    try:
      config = variant_config(recipe, v)
    except config_lib.ConfigError as e:
      print(f"{v}: refused: {e}", flush=True)
      continue
    one, nets, hlo, compile_s, first_s = build_gemgan(config)
    torch_one, why = build_torch(config, nets)
    runs[v] = dict(config=config, gemgan=one, torch=torch_one, why=why, hlo=hlo,
                   secs={"gemgan": [], "torch": []})
    print(f"{v}: gemgan compile {compile_s:.1f} s, first iteration {first_s:.2f} s; {hlo}"
          + (f"; torch: {why}" if why else ""), flush=True)
  return runs


def time_rounds(runs: dict, rounds: int, steps: int) -> None:
  """Appends each side's seconds per iteration, round-robin over variants and sides."""
  for r in range(rounds):
    for run in runs.values():
      for side in ("gemgan", "torch"):
        if run[side] is None:
          continue
        t = time.perf_counter()
        for _ in range(steps):
          run[side]()
        run["secs"][side].append((time.perf_counter() - t) / steps)
    print(f"round {r}, s/iteration gemgan/torch: " + ", ".join(
        f"{v} {run['secs']['gemgan'][-1]:.3f}"
        + (f"/{run['secs']['torch'][-1]:.3f}" if run["torch"] else "/-")
        for v, run in runs.items()), flush=True)


def _med_min(values):
  return (statistics.median(values), min(values)) if values else (float("nan"),) * 2


def summarize(runs: dict) -> list[dict]:
  """Per variant: img/s of each side, gemgan/torch and variant/base (per-round ratios)."""
  rows, base = [], runs.get("base")
  for v, run in runs.items():
    secs, batch = run["secs"], run["config"].batch_size
    row = {"variant": v, "torch_note": run["why"], "hlo": run["hlo"]}
    for side in ("gemgan", "torch"):
      row[f"{side}_img_s"] = _med_min([batch / s for s in secs[side]])
      row[f"{side}_vs_base"] = _med_min(
          [b / s for b, s in zip(base["secs"][side], secs[side])] if base else [])
    row["gemgan_vs_torch"] = _med_min([t / g for g, t in zip(secs["gemgan"], secs["torch"])])
    rows.append(row)
  return rows


def format_rows(rows: list[dict]) -> str:
  """A table: each cell 'median (min)' over rounds."""
  cell = lambda pair, fmt: "-" if np.isnan(pair[0]) else f"{pair[0]:{fmt}} ({pair[1]:{fmt}})"
  head = (f"{'variant':<22} {'gemgan img/s':>16} {'torch img/s':>16} {'gemgan/torch':>14} "
          f"{'gemgan/base':>14} {'torch/base':>14}")
  lines = [head]
  for r in rows:
    lines.append(f"{r['variant']:<22} {cell(r['gemgan_img_s'], '7.1f'):>16} "
                 f"{cell(r['torch_img_s'], '7.1f'):>16} {cell(r['gemgan_vs_torch'], '5.2f'):>14} "
                 f"{cell(r['gemgan_vs_base'], '5.2f'):>14} {cell(r['torch_vs_base'], '5.2f'):>14}")
  return "\n".join(lines)


def header(args) -> str:
  cpu = benchmark.cpu_info()
  return (f"{args.recipe}, variants {args.variants}: {args.rounds} interleaved rounds x "
          f"{args.steps} iterations; jax {jax.__version__}; CPU {cpu['cpu_model']} "
          f"({os.cpu_count()} cores); XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; {load()}")


def load() -> str:
  return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1, 5, 15 min)"


def run_flag_sets(args) -> None:
  """This script once per XLA flag set, each in a child process; one table."""
  table = []
  for flags in args.xla_flag_sets.split(";"):
    cmd = [sys.executable, "-m", "experiments.cpu_speed.recipe_variants", "--recipe",
           args.recipe, "--variants", args.variants, "--rounds", str(args.rounds),
           "--steps", str(args.steps), "--json"]
    env = {**os.environ, "XLA_FLAGS": flags.strip()}
    print(f"XLA_FLAGS={flags.strip()!r} ...", flush=True)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
      print(f"  failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}", flush=True)
      continue
    *lines, result = out.stdout.strip().splitlines()
    print("\n".join("  " + line for line in lines), flush=True)
    for row in json.loads(result)["rows"]:
      table.append((flags.strip() or "(default)", row))
  for flags, r in table:
    print(f"{flags:<50} {r['variant']:<14} gemgan {r['gemgan_img_s'][0]:7.1f} img/s "
          f"(min {r['gemgan_img_s'][1]:.1f}), torch {r['torch_img_s'][0]:7.1f}, gemgan/torch "
          f"{r['gemgan_vs_torch'][0]:.2f} (min {r['gemgan_vs_torch'][1]:.2f}); {r['hlo']}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--recipe", default="resnet:laptop", help="configs/<file>.py:<preset>")
  parser.add_argument("--variants", default="base,fused,batched,fused+batched,diffaug,noema")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--xla_flag_sets", default=None,
                      help="';'-separated XLA_FLAGS values, one child process each")
  parser.add_argument("--json", action="store_true")
  args = parser.parse_args()
  if args.xla_flag_sets is not None:
    run_flag_sets(args)
    return
  print(header(args), flush=True)
  runs = build_all(args.recipe, args.variants.split(","))
  time_rounds(runs, args.rounds, args.steps)
  rows = summarize(runs)
  print(f"median (min) over rounds; after timing: {load()}")
  print(format_rows(rows))
  if args.json:
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
  main()
