"""Per-layer time of the forward pass, input gradient and weight gradient:
nn.Conv / nn.ConvTranspose (XLA autodiff) vs gemgan.ops FastConv*.

Every conv layer of the DCGAN-96 and WGAN-GP-96 models at batch 64.
Variants are timed round-robin in one process (the machine is shared;
compare within a run); medians over rounds of the best of --reps calls, in
ms and useful GFLOP/s (forward FLOPs; the same for each gradient).

  python -m experiments.cpu_speed.layers [--rounds 3] [--only D1,G2] \
      [--variants xla,fast:lax:lax,fast:lax:subpixel]

A fast variant is fast:<strided>:<transposed> (gemgan.ops.conv.BACKEND).
"""
import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from experiments.cpu_speed import common
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
PARTS = ("fwd", "dx", "dw")


def build(name, variant):
  """{part: (compiled, args)} and the layer's useful forward FLOPs."""
  transposed, h, cin, cout, k, s, pad = LAYERS[name]
  if variant == "xla":
    cls = nn.ConvTranspose if transposed else nn.Conv
  else:
    cls = fast.FastConvTranspose if transposed else fast.FastConv
    _, fast.BACKEND["strided"], fast.BACKEND["transposed"] = variant.split(":")
  layer = cls(cout, (k, k), strides=(s, s), padding=pad, use_bias=False)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((B, h, h, cin)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((k, k, cin, cout)) * 0.05, jnp.float32)
  apply = lambda w, x: layer.apply({"params": {"kernel": w}}, x)
  y = jax.eval_shape(apply, w, x)
  g = jnp.ones(y.shape, y.dtype)
  fns = {"fwd": (apply, (w, x)),
         "dx": (lambda w, x, g: jax.vjp(lambda x: apply(w, x), x)[1](g), (w, x, g)),
         "dw": (lambda w, x, g: jax.vjp(lambda w: apply(w, x), w)[1](g), (w, x, g))}
  built = {p: (jax.jit(f).lower(*a).compile(), a) for p, (f, a) in fns.items()}
  # Useful FLOPs: every output pixel times the kernel taps that see real input.
  if transposed:
    flops = 2 * B * h * h * k * k * cin * cout
  else:
    flops = 2 * np.prod(y.shape) * k * k * cin
  return built, flops


def best_of(fn, args, reps):
  return min(common.call_seconds(fn, args, reps))


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
    times = {(v, p): [] for v in variants for p in PARTS}
    for _ in range(args.rounds):
      for v, (parts, _) in built.items():
        for p, (fn, fargs) in parts.items():
          times[v, p].append(best_of(fn, fargs, args.reps))
    flops = built[variants[0]][1]
    lines = []
    for v in variants:
      cells = []
      for p in PARTS:
        t = np.median(times[v, p]) * 1e3
        cells.append(f"{p} {t:7.1f} ms {flops / t / 1e6:4.0f}")
      lines.append(f"{v:>18}  " + " | ".join(cells))
    print(f"{name} ({flops / 1e9:.2f} GFLOP; ms, GFLOP/s)\n" + "\n".join(lines), flush=True)


if __name__ == "__main__":
  main()
