r"""Which bf16 forms reach the CPU's bf16 units (AMX, avx512_bf16) in XLA:CPU, against torch.

  python -m experiments.cpu_speed.bf16_forms [--n=4096] [--repeats=10]

Times, best of `--repeats`, in one process:
- an n x n matmul: JAX fp32, bf16 -> bf16 (what `jnp.dot` of bf16 arrays
  does), bf16 -> f32 (`preferred_element_type=jnp.float32`, accumulation and
  output in f32), and torch fp32 / bf16;
- 'SAME' convolutions of gemgan's sizes in the same three JAX forms, and the
  bf16 -> f32 one re-expressed as a sum of kh*kw shifted 1x1 dots (the form
  that would reach a fast dot when the conv path has none);
and prints GFLOP/s with whether XLA handed the op to YNNPACK.
"""
import argparse
import time

import jax
import jax.numpy as jnp
from jax import lax

CONV_SHAPES = (  # (input NHWC, kernel HWIO): ResNet laptop, DCGAN 96 px, WGAN-GP 96 px layers
    ((64, 32, 32, 16), (3, 3, 16, 16)),
    ((64, 16, 16, 32), (3, 3, 32, 32)),
    ((64, 48, 48, 64), (3, 3, 64, 64)),
    ((64, 12, 12, 256), (5, 5, 256, 256)),
)


def best_seconds(fn, *args, repeats: int) -> float:
  fn(*args).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn(*args).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return best


def conv(x, w, out_dtype):
  return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                  preferred_element_type=out_dtype)


def conv_as_shifted_dots(x, w, out_dtype):
  """'SAME' stride-1 conv (odd kernel) as kh*kw 1x1 dots of shifted views, summed."""
  kh, kw = w.shape[:2]
  _, h, wd, _ = x.shape
  xp = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  taps = [jnp.einsum("nhwc,co->nhwo", xp[:, i:i + h, j:j + wd], w[i, j],
                     preferred_element_type=out_dtype) for i in range(kh) for j in range(kw)]
  return sum(taps[1:], taps[0])


def jax_rate(fn, args, flops, repeats):
  jitted = jax.jit(fn)
  on_ynn = "ynn" in jitted.lower(*args).compile().as_text()
  return flops / best_seconds(jitted, *args, repeats=repeats) / 1e9, on_ynn


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--n", type=int, default=4096)
  p.add_argument("--repeats", type=int, default=10)
  args = p.parse_args()
  f32, bf16 = jnp.float32, jnp.bfloat16
  forms = (("fp32", f32, f32), ("bf16->bf16", bf16, bf16), ("bf16->f32", bf16, f32))
  flops = 2 * args.n ** 3
  print(f"matmul {args.n}^2, GFLOP/s (on YNNPACK?)")
  for name, dtype, out in forms:
    a = jnp.ones((args.n, args.n), dtype)
    rate, ynn = jax_rate(lambda a, b, out=out: jnp.dot(a, b, preferred_element_type=out),
                         (a, a), flops, args.repeats)
    print(f"  jax   {name:11s} {rate:7.0f}  ({ynn})")
  try:
    import torch  # pylint: disable=g-import-not-at-top
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
      a = torch.ones(args.n, args.n, dtype=dtype)
      rate = flops / best_seconds(lambda a: _Ready(a @ a), a, repeats=args.repeats) / 1e9
      print(f"  torch {name:11s} {rate:7.0f}")
  except ImportError:
    print("  torch not installed: pip install -r requirements-metrics.txt")
  print("convolutions, 'SAME', GFLOP/s (on YNNPACK?)")
  for shape_x, shape_w in CONV_SHAPES:
    n, h, w, ci = shape_x
    kh, kw, _, co = shape_w
    conv_flops = 2 * n * h * w * ci * co * kh * kw
    cells = []
    for name, dtype, out in forms:
      x, k = jnp.ones(shape_x, dtype), jnp.ones(shape_w, dtype)
      rate, ynn = jax_rate(lambda x, k, out=out: conv(x, k, out), (x, k), conv_flops, args.repeats)
      cells.append(f"{name} {rate:4.0f} ({ynn})")
    x, k = jnp.ones(shape_x, bf16), jnp.ones(shape_w, bf16)
    rate, _ = jax_rate(lambda x, k: conv_as_shifted_dots(x, k, f32), (x, k), conv_flops,
                       args.repeats)
    cells.append(f"shifted dots bf16->f32 {rate:4.0f}")
    print(f"  {shape_x} * {kh}x{kw}x{co}: " + ", ".join(cells))


class _Ready:
  """A torch result behind JAX's `block_until_ready` (torch CPU ops are synchronous)."""

  def __init__(self, tensor):
    self.tensor = tensor

  def block_until_ready(self):
    return self.tensor


if __name__ == "__main__":
  main()
