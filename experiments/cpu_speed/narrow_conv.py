"""A conv with 3 output channels (the generator's last, the image gradient of
the critic's first), as XLA:CPU runs it (Eigen) and zero-padded to 8 or 16
output channels so that YNNPACK takes it, then sliced back.

  python -m experiments.cpu_speed.narrow_conv
"""
import statistics

import jax
import jax.numpy as jnp
from jax import lax

from experiments.cpu_speed import common

DN = ("NHWC", "HWIO", "NHWC")


def conv(x, w, pad_to: int = 0):
  out = w.shape[-1]
  if pad_to:
    w = jnp.pad(w, ((0, 0), (0, 0), (0, 0), (0, pad_to - out)))
  return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN)[..., :out]


def median_ms(f, *args, repeats: int = 20) -> float:
  return 1e3 * statistics.median(common.call_seconds(f, args, repeats))


def main():
  key = jax.random.PRNGKey(0)
  for n, size, cin in [(64, 32, 16), (64, 96, 64)]:
    x = jax.random.normal(key, (n, size, size, cin))
    w = jax.random.normal(key, (3, 3, cin, 3))
    row = []
    for pad_to in (0, 8, 16):
      f = jax.jit(lambda x, w, p=pad_to: conv(x, w, p))
      row.append(f"{'plain' if not pad_to else f'pad {pad_to}'} {median_ms(f, x, w):.1f} ms")
    print(f"[{n},{size},{size},{cin}] * [3,3,{cin},3]:", ", ".join(row))


if __name__ == "__main__":
  main()
