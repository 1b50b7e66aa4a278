"""Time of ADA's augment vs DiffAugment on this CPU, forward and forward+backward.

Both jitted, on [batch, size, size, 3] images; ADA with all its ops at p = 1
(its cost does not depend on p: every op is computed, unselected samples are
passed through), DiffAugment with 'color,translation,cutout'. The backward
pass is a VJP w.r.t. the images, as the generator's update needs. Variants are
timed round-robin in one process (the machine is shared); medians over
rounds of the best of --reps calls, in ms.

  python -m experiments.cpu_speed.augment [--sizes 32,96] [--batch 64]
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from gemgan import ada, augment

VARIANTS = {
    "ada": lambda x, key: ada.augment(x, 1.0, key),
    "diffaugment": lambda x, key: augment.diff_augment(x, "color,translation,cutout", key),
}


def compiled(fn, backward):
  """jit(fn), or jit of (fn's output, its VJP of a cotangent): both are returned
  so that XLA cannot drop the forward pass."""
  if not backward:
    return jax.jit(fn)

  def fwd_bwd(x, key):
    y, vjp = jax.vjp(lambda v: fn(v, key), x)
    return y, vjp(jnp.ones_like(y))[0]
  return jax.jit(fwd_bwd)


def best_ms(f, x, reps):
  times = []
  for i in range(reps):
    key = jax.random.PRNGKey(i)
    t = time.perf_counter()
    jax.block_until_ready(f(x, key))
    times.append(time.perf_counter() - t)
  return 1e3 * min(times)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--sizes", default="32,96")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--reps", type=int, default=5)
  args = parser.parse_args()
  for size in map(int, args.sizes.split(",")):
    x = jax.random.uniform(jax.random.PRNGKey(0), (args.batch, size, size, 3),
                           minval=-1, maxval=1)
    fns = {(name, bwd): compiled(fn, bwd) for name, fn in VARIANTS.items()
           for bwd in (False, True)}
    for f in fns.values():  # compile
      jax.block_until_ready(f(x, jax.random.PRNGKey(0)))
    results = {k: [] for k in fns}
    for _ in range(args.rounds):
      for k, f in fns.items():
        results[k].append(best_ms(f, x, args.reps))
    for (name, bwd), ms in results.items():
      print(f"[{args.batch},{size},{size},3] {name:12s} {'fwd+bwd' if bwd else 'fwd':8s} "
            f"{statistics.median(ms):8.2f} ms", flush=True)


if __name__ == "__main__":
  main()
