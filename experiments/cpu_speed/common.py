"""Timing helpers shared by the cpu_speed scripts.

The machine's 2 cores are shared with other jobs, so every number is taken
round-robin with the variants it is compared to and with the fp32 matmul
peak, and efficiency (MFU) is reported per round against that round's peak:
by wall time, and by this process's CPU time (less sensitive to other jobs;
2 busy threads use 2 CPU seconds per wall second).
"""
import os
import statistics
import time

import jax
import jax.numpy as jnp


def parse_timing_args(parser):
  """Adds the flags every round-robin script shares, parses, echoes XLA_FLAGS."""
  parser.add_argument("--impls", default="xla,fast")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=2)
  args = parser.parse_args()
  print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)
  return args


def time_both(fn):
  """(wall seconds, process CPU seconds) of fn()."""
  t, c = time.perf_counter(), time.process_time()
  fn()
  return time.perf_counter() - t, time.process_time() - c


def call_seconds(fn, args, reps: int) -> list[float]:
  """Wall seconds of `reps` calls of fn(*args), after one untimed call."""
  jax.block_until_ready(fn(*args))
  return [time_both(lambda: jax.block_until_ready(fn(*args)))[0] for _ in range(reps)]


def matmul_peak(n: int = 4096, repeats: int = 2):
  """fp32 n x n matmul GFLOP/s per wall second and per CPU second (best of)."""
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  jax.block_until_ready(f(a))
  times = [time_both(lambda: jax.block_until_ready(f(a))) for _ in range(repeats)]
  flop = 2 * n**3 / 1e9
  return flop / min(t for t, _ in times), flop / min(c for _, c in times)


def rounds(runs: dict, num_rounds: int, steps: int, call):
  """Times `call(run)` (one iteration, returns something to block on) for
  every run in turn, `steps` times per round, and the matmul peak per round.
  Appends per-iteration wall/CPU seconds and the round's peaks to each run."""
  for r in range(num_rounds):
    peak_wall, peak_cpu = matmul_peak()
    for run in runs.values():
      def go(run=run):
        for _ in range(steps):
          out = call(run)
        jax.block_until_ready(out)
      wall, cpu = time_both(go)
      run.setdefault("wall", []).append(wall / steps)
      run.setdefault("cpu", []).append(cpu / steps)
      run.setdefault("peak", []).append((peak_wall, peak_cpu))
    print(f"round {r}: matmul peak {peak_wall:.0f} GFLOP/s (wall) {peak_cpu:.0f} (CPU); " +
          ", ".join(f"{k} {v['wall'][-1]:.2f} s (CPU {v['cpu'][-1]:.2f} s)"
                    for k, v in runs.items()), flush=True)


def report(prefix: str, runs: dict, batch: int):
  """One line per run: images/s (median, min-max), GFLOP/s and MFU."""
  for name, run in runs.items():
    wall, cpu = run["wall"], run["cpu"]
    mfu_wall = [run["gflop"] / w / p for w, (p, _) in zip(wall, run["peak"])]
    mfu_cpu = [run["gflop"] / c / p for c, (_, p) in zip(cpu, run["peak"])]
    print(f"{prefix} {name:>5}: {batch / statistics.median(wall):6.2f} images/s "
          f"(min-max {batch / max(wall):.2f}-{batch / min(wall):.2f}; "
          f"{statistics.median(wall):.2f} s/iteration, CPU {statistics.median(cpu):.2f} s), "
          f"{run['gflop'] / statistics.median(wall):.0f} GFLOP/s, MFU {statistics.median(mfu_wall):.0%}"
          f" of the round's matmul peak by wall time, {statistics.median(mfu_cpu):.0%} by CPU time",
          flush=True)
