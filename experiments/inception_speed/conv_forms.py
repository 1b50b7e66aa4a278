r"""Inception's convolutions on XLA:CPU: the plain conv against other forms.

  python experiments/inception_speed/conv_forms.py

For the layers of the FID InceptionV3 at batch 10 (the extractor's batch),
times `lax.conv_general_dilated` (what the network uses) against forms that
might run faster on a CPU: im2col (shifted slices concatenated, one dot),
row-im2col (kw taps concatenated, kh dots summed), channel counts padded to
wider multiples (zero weights, output sliced), and a 1x1 conv as a dot.
Prints ms and useful GFLOP/s per form and the max difference to the conv.
gemgan's XLA:CPU defaults apply (gemgan/xla_cpu.py); set XLA_FLAGS to
compare others, e.g. YNNPACK convolutions:
XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=individual_dot,individual_convolution
"""
import time

import gemgan  # noqa: F401  (sets gemgan's XLA:CPU defaults before JAX starts)

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

DN = ("NHWC", "HWIO", "NHWC")


def bench(f, *args, n=5):
  f(*args).block_until_ready()
  t = time.perf_counter()
  for _ in range(n):
    f(*args).block_until_ready()
  return (time.perf_counter() - t) / n


def conv(x, w, pad, s=1):
  return lax.conv_general_dilated(x, w, (s, s), pad, dimension_numbers=DN)


def im2col(x, w, pad, s=1):
  del s
  kh, kw, ci, co = w.shape
  xp = jnp.pad(x, ((0, 0), pad[0], pad[1], (0, 0)))
  h, wd = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
  cols = jnp.concatenate([xp[:, i:i + h, j:j + wd] for i in range(kh) for j in range(kw)], -1)
  return (cols.reshape(-1, kh * kw * ci) @ w.reshape(-1, co)).reshape(x.shape[0], h, wd, co)


def row_im2col(x, w, pad, s=1):
  del s
  kh, kw, ci, co = w.shape
  xp = jnp.pad(x, ((0, 0), pad[0], pad[1], (0, 0)))
  h, wd = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
  cols = jnp.concatenate([xp[:, :, j:j + wd] for j in range(kw)], -1)
  wm = w.reshape(kh, kw * ci, co)
  return sum(jnp.einsum("nhwk,kc->nhwc", cols[:, i:i + h], wm[i]) for i in range(kh))


def padded(co_to, ci_to=None):
  def f(x, w, pad, s=1):
    ci, co = w.shape[2:]
    ci_to_ = ci_to or ci
    wp = jnp.pad(w, ((0, 0), (0, 0), (0, ci_to_ - ci), (0, co_to - co)))
    xp = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, ci_to_ - ci)))
    return conv(xp, wp, pad, s)[..., :co]
  return f


def as_dot(x, w, pad, s=1):
  del pad, s
  return jnp.einsum("nhwc,cd->nhwd", x, w[0, 0])


V = ((0, 0), (0, 0))
CASES = [  # name, input, kernel, padding, stride, forms
    ("Conv2d_1a 3x3/2 3->32, 299 px", (10, 299, 299, 3), (3, 3, 3, 32), V, 2,
     [("co64", padded(64)), ("ci8", padded(32, 8))]),
    ("Conv2d_2a 3x3 32->32, 147 px", (10, 149, 149, 32), (3, 3, 32, 32), V, 1,
     [("im2col", im2col), ("rows", row_im2col), ("co64", padded(64))]),
    ("Conv2d_4a 3x3 80->192, 71 px", (10, 73, 73, 80), (3, 3, 80, 192), V, 1,
     [("im2col", im2col), ("rows", row_im2col), ("ci96", padded(192, 96))]),
    ("Mixed_5 5x5 48->64, 35 px", (10, 35, 35, 48), (5, 5, 48, 64), ((2, 2), (2, 2)), 1,
     [("im2col", im2col), ("ci64", padded(64, 64))]),
    ("Mixed_6 1x1 768->192, 17 px", (10, 17, 17, 768), (1, 1, 768, 192), V, 1,
     [("dot", as_dot)]),
    ("Mixed_6 1x7 128->128, 17 px", (10, 17, 17, 128), (1, 7, 128, 128), ((0, 0), (3, 3)), 1,
     [("im2col", im2col), ("rows", row_im2col)]),
    ("Mixed_7 3x3 448->384, 8 px", (10, 8, 8, 448), (3, 3, 448, 384), ((1, 1), (1, 1)), 1,
     [("im2col", im2col)]),
]


def main():
  rng = np.random.RandomState(0)
  for name, xs, ws, pad, s, forms in CASES:
    x = jnp.asarray(rng.randn(*xs), jnp.float32)
    w = jnp.asarray(rng.randn(*ws) * 0.05, jnp.float32)
    fns = {"conv": jax.jit(lambda x, w, pad=pad, s=s: conv(x, w, pad, s))}
    for key, f in forms:
      fns[key] = jax.jit(lambda x, w, f=f, pad=pad, s=s: f(x, w, pad, s))
    ref = fns["conv"](x, w)
    gflop = 2 * xs[0] * ref.shape[1] * ref.shape[2] * np.prod(ws) / 1e9
    cells = []
    for key, f in fns.items():
      err, t = float(jnp.max(jnp.abs(f(x, w) - ref))), bench(f, x, w)
      cells.append(f"{key} {t * 1e3:.1f} ms {gflop / t:.0f} GF/s (err {err:.0e})")
    print(f"{name}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
  main()
