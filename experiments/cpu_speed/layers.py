"""Per-layer forward and backward time: nn.Conv(Transpose) vs Fast*.

Every layer of the DCGAN-96 and WGAN-GP-96 models at batch 64. Variants are
timed round-robin in one process (the machine is shared; compare within a
run). Prints medians over rounds, in ms and useful GFLOP/s. "bwd" is the
input and weight gradients (the forward result is unused there, so XLA drops
it); useful FLOPs: 2x forward.

  python experiments/cpu_speed/layers.py [--rounds 3] [--only D1,G2] \
      [--variants xla,fast:lax:lax,fast:taps:taps]
"""
import argparse
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gemgan.ops import conv as fast

B = 64
P1 = ((1, 1), (1, 1))
P2 = ((2, 2), (2, 2))
# name: (transposed?, input H, Cin, Cout, kernel, stride, padding)
LAYERS = {
    "D0": (False, 96, 3, 64, 4, 2, P1), "D1": (False, 48, 64, 128, 4, 2, P1),
    "D2": (False, 24, 128, 256, 4, 2, P1), "D3": (False, 12, 256, 512, 4, 2, P1),
    "Dh": (False, 6, 512, 1, 6, 1, "VALID"),
    "G0": (True, 1, 100, 512, 6, 1, "VALID"), "G1": (True, 6, 512, 256, 4, 2, P2),
    "G2": (True, 12, 256, 128, 4, 2, P2), "G3": (True, 24, 128, 64, 4, 2, P2),
    "G4": (True, 48, 64, 3, 4, 2, P2),
    "W0": (False, 96, 3, 64, 5, 2, "SAME"), "W1": (False, 48, 64, 128, 5, 2, "SAME"),
    "W2": (False, 24, 128, 256, 5, 2, "SAME"), "W3": (False, 12, 256, 512, 5, 2, "SAME"),
    "V1": (True, 6, 512, 256, 5, 2, "SAME"), "V2": (True, 12, 256, 128, 5, 2, "SAME"),
    "V3": (True, 24, 128, 64, 5, 2, "SAME"), "V4": (True, 48, 64, 3, 5, 2, "SAME"),
}


def build(name, variant):
  """(fwd, bwd) compiled executables and their args for one layer."""
  transposed, h, cin, cout, k, s, pad = LAYERS[name]
  if variant == "xla":
    cls = nn.ConvTranspose if transposed else nn.Conv
  else:
    cls = fast.FastConvTranspose if transposed else fast.FastConv
    _, fast.BACKEND["strided"], fast.BACKEND["transposed"] = variant.split(":")
  layer = cls(cout, (k, k), strides=(s, s), padding=pad, use_bias=False)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((B, h, h, cin)), jnp.float32)
  params = {"kernel": jnp.asarray(rng.standard_normal((k, k, cin, cout)) * 0.05, jnp.float32)}
  apply = lambda p, x: layer.apply({"params": p}, x)
  y = jax.eval_shape(apply, params, x)
  g = jnp.ones(y.shape, y.dtype)
  fwd = jax.jit(apply).lower(params, x).compile()
  bwd = jax.jit(lambda p, x, g: jax.vjp(apply, p, x)[1](g)).lower(params, x, g).compile()
  flops = 2 * np.prod(y.shape) * k * k * cin / (s * s if transposed else 1)
  return fwd, bwd, (params, x), (params, x, g), flops


def timeit(fn, args, reps):
  jax.block_until_ready(fn(*args))
  best = []
  for _ in range(reps):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best.append(time.perf_counter() - t)
  return min(best)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--reps", type=int, default=2)
  parser.add_argument("--only", default="")
  parser.add_argument("--variants", default="xla,fast:lax:lax")
  args = parser.parse_args()
  names = args.only.split(",") if args.only else list(LAYERS)
  variants = args.variants.split(",")
  for name in names:
    built = {v: build(name, v) for v in variants}
    times = {v: ([], []) for v in variants}
    for _ in range(args.rounds):
      for v, (fwd, bwd, fargs, bargs, _) in built.items():
        times[v][0].append(timeit(fwd, fargs, args.reps))
        times[v][1].append(timeit(bwd, bargs, args.reps))
    flops = built[variants[0]][4]
    cells = []
    for v in variants:
      f, t = np.median(times[v][0]) * 1e3, np.median(times[v][1]) * 1e3
      cells.append(f"{v:>18} fwd {f:7.1f} ms {flops / f / 1e6:4.0f} GF/s | "
                   f"bwd {t:7.1f} ms {2 * flops / t / 1e6:4.0f} GF/s")
    print(f"{name} ({flops / 1e9:.2f} GFLOP fwd)\n  " + "\n  ".join(cells), flush=True)


if __name__ == "__main__":
  main()
