"""Convolutions whose forward and backward passes all run as stride-1 convs.

XLA:CPU runs forward convolutions well but lowers some gradient convolutions
to very slow loops: the weight gradient of a transposed (input-dilated)
convolution runs at ~1-2 GFLOP/s, 30-50x slower than a forward conv of the
same size. This module rewrites every convolution as layout shuffles around
one stride-1, undilated 'VALID' convolution:

- a strided conv is a stride-1 conv on the space-to-depth input
  (s*s*C channels) with a re-packed kernel;
- a transposed (input-dilated) conv is a stride-1 conv on the small input
  with a kernel holding all s*s output phases (sub-pixel convolution),
  followed by depth-to-space.

The stride-1 conv (`conv_s1`) and its weight gradient (`wgrad_s1`) are
`jax.custom_vjp` functions whose backward rules call each other, so first
derivatives, and second derivatives such as a gradient penalty's, are again
stride-1 convs; JAX differentiates the cheap shuffles itself. Outputs equal
`lax.conv_general_dilated`'s up to float rounding (tests/test_fast_conv.py).

`FastConv` and `FastConvTranspose` are drop-in replacements for
`flax.linen.Conv` and `flax.linen.ConvTranspose` (same attributes, parameter
names, shapes and initialisers) for 2-D NHWC inputs.
"""
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array
Padding = str | int | Sequence[int | tuple[int, int]]
_DN = ("NHWC", "HWIO", "NHWC")

# How the two stride-1 primitives are lowered: "lax" (one XLA convolution),
# "taps" (one matmul per kernel tap, summed) or "im2col" (patches, one
# matmul). Experiments switch these; see experiments/cpu_speed/.
BACKEND = {"conv": "lax", "wgrad": "lax"}


# ----------------------------------------------------------------------------
# Stride-1 core: y = conv_s1(x, w), dw = wgrad_s1(x, dy).

def _pad_hw(x: Array, pads) -> Array:
  """Zero-pads (or, for negative amounts, crops) the two spatial axes."""
  (a, b), (c, d) = pads
  return lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (a, b, 0), (c, d, 0), (0, 0, 0)))


def _flip_t(w: Array) -> Array:
  """HWIO kernel -> spatially flipped HWOI kernel (the input-gradient kernel)."""
  return jnp.flip(w, (0, 1)).swapaxes(2, 3)


def _taps(x: Array, kh: int, kw: int):
  """The kh*kw shifted 'VALID' windows of x, in kernel (row-major) order."""
  ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  return [x[:, i:i + ho, j:j + wo, :] for i in range(kh) for j in range(kw)]


def _conv_s1_impl(x: Array, w: Array) -> Array:
  kh, kw, c, o = w.shape
  mode = BACKEND["conv"]
  if mode == "lax" or kh * kw == 1 and mode == "im2col":
    return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=_DN)
  taps = _taps(x, kh, kw)
  if mode == "taps":
    return sum(jnp.einsum("nhwc,co->nhwo", t, w[i // kw, i % kw]) for i, t in enumerate(taps))
  if mode == "im2col":
    return jnp.concatenate(taps, axis=-1) @ w.reshape(kh * kw * c, o)
  raise ValueError(f"unknown conv backend {mode!r}")


def _wgrad_s1_impl(x: Array, g: Array) -> Array:
  kh, kw = x.shape[1] - g.shape[1] + 1, x.shape[2] - g.shape[2] + 1
  mode = BACKEND["wgrad"]
  if mode == "lax":
    # Batch and feature swap roles: a conv over (C, H, W) with N contracted.
    return lax.conv_general_dilated(x, g, (1, 1), "VALID",
                                    dimension_numbers=("CHWN", "IHWO", "HWNC"))
  taps = _taps(x, kh, kw)
  c, o = x.shape[-1], g.shape[-1]
  if mode == "taps":
    dw = jnp.stack([jnp.einsum("nhwc,nhwo->co", t, g) for t in taps])
    return dw.reshape(kh, kw, c, o)
  if mode == "im2col":
    p = jnp.concatenate(taps, axis=-1).reshape(-1, kh * kw * c)
    return (p.T @ g.reshape(-1, o)).reshape(kh, kw, c, o)
  raise ValueError(f"unknown wgrad backend {mode!r}")


@jax.custom_vjp
def conv_s1(x: Array, w: Array) -> Array:
  """Stride-1 'VALID' convolution, NHWC x HWIO -> NHWC, with fast gradients."""
  return _conv_s1_impl(x, w)


@jax.custom_vjp
def wgrad_s1(x: Array, g: Array) -> Array:
  """Weight gradient of `conv_s1(x, w)` for output cotangent g: HWIO."""
  return _wgrad_s1_impl(x, g)


def _conv_s1_fwd(x, w):
  return conv_s1(x, w), (x, w)


def _input_grad(g: Array, w: Array) -> Array:
  """d<g, conv_s1(x, w)>/dx: a 'full' stride-1 conv with the flipped kernel."""
  kh, kw = w.shape[:2]
  return conv_s1(_pad_hw(g, ((kh - 1, kh - 1), (kw - 1, kw - 1))), _flip_t(w))


def _conv_s1_bwd(res, g):
  x, w = res
  return _input_grad(g, w), wgrad_s1(x, g)


def _wgrad_s1_fwd(x, g):
  return wgrad_s1(x, g), (x, g)


def _wgrad_s1_bwd(res, dw_bar):
  # wgrad_s1 is bilinear: <dw_bar, wgrad_s1(x, g)> = <g, conv_s1(x, dw_bar)>.
  x, g = res
  return _input_grad(g, dw_bar), conv_s1(x, dw_bar)


conv_s1.defvjp(_conv_s1_fwd, _conv_s1_bwd)
wgrad_s1.defvjp(_wgrad_s1_fwd, _wgrad_s1_bwd)


# ----------------------------------------------------------------------------
# Strided and transposed convolutions as shuffles around conv_s1.

def conv(x: Array, w: Array, strides: Sequence[int], padding) -> Array:
  """`lax.conv_general_dilated(x, w, strides, padding)` for NHWC/HWIO.

  `padding` is two (low, high) pairs. Runs as a stride-1 conv on the
  space-to-depth input: output row i reads padded rows s*i .. s*i+K-1, which
  are rows i .. i+ceil(K/s)-1 of the s-fold folded input.
  """
  b, c, o = x.shape[0], x.shape[-1], w.shape[-1]
  pads, kq, lq = [], [], []
  for n, k, s, (lo, hi) in zip(x.shape[1:3], w.shape[:2], strides, padding):
    m = (n + lo + hi - k) // s + 1
    if m <= 0:
      raise ValueError(f"convolution output would be empty: input {n}, kernel {k}, "
                       f"stride {s}, padding {(lo, hi)}")
    q = -(-k // s)  # taps per phase
    length = (m - 1 + q) * s  # padded length, a multiple of s
    pads.append((lo, length - n - lo))
    kq.append(q)
    lq.append(length // s)
  (sh, sw), (qh, qw) = strides, kq
  x = _pad_hw(x, pads)
  if (sh, sw) == (1, 1):
    return conv_s1(x, w)
  x = x.reshape(b, lq[0], sh, lq[1], sw, c).transpose(0, 1, 3, 2, 4, 5)
  x = x.reshape(b, lq[0], lq[1], sh * sw * c)
  w = jnp.pad(w, ((0, qh * sh - w.shape[0]), (0, qw * sw - w.shape[1]), (0, 0), (0, 0)))
  w = w.reshape(qh, sh, qw, sw, c, o).transpose(0, 2, 1, 3, 4, 5).reshape(qh, qw, sh * sw * c, o)
  return conv_s1(x, w)


def _phases(n: int, k: int, d: int, lo: int, hi: int):
  """Sub-pixel plan for one axis of an input-dilated conv (see conv_transpose).

  Output row q = d*u + r reads input rows u + e_r + t with kernel taps
  k_r + d*t, t = 0 .. T_r - 1, where k_r = (lo - r) mod d.
  """
  m = (n - 1) * d + 1 + lo + hi - k + 1
  if m <= 0:
    raise ValueError(f"transposed convolution output would be empty: input {n}, "
                     f"kernel {k}, stride {d}, padding {(lo, hi)}")
  first = [(lo - r) % d for r in range(d)]
  offset = [(r + kr - lo) // d for r, kr in enumerate(first)]
  taps = max(-(-(k - kr) // d) for kr in first)
  return m, first, offset, taps


def conv_transpose(x: Array, w: Array, strides: Sequence[int], padding) -> Array:
  """`lax.conv_general_dilated(x, w, 1, padding, lhs_dilation=strides)`.

  This is `lax.conv_transpose(x, w, strides, padding)` with explicit padding
  (two (low, high) pairs) and `transpose_kernel=False`. Runs as one stride-1
  conv on the undilated input producing all d*d output phases as channels
  (the kernel holds each phase's taps), then interleaves the phases.
  """
  b, c, o = x.shape[0], x.shape[-1], w.shape[-1]
  plans = [_phases(n, k, d, lo, hi)
           for n, k, d, (lo, hi) in zip(x.shape[1:3], w.shape[:2], strides, padding)]
  (dh, dw_), (th, tw) = strides, (plans[0][3], plans[1][3])
  # Kernel: [T_h, T_w, C, (r_h, r_w, O)], tap t of phase r is w[k_r + d*t].
  kernel = jnp.zeros((th, tw, c, dh, dw_, o), w.dtype)
  for rh, kh0 in enumerate(plans[0][1]):
    for rw, kw0 in enumerate(plans[1][1]):
      sub = w[kh0::dh, kw0::dw_]
      kernel = kernel.at[:sub.shape[0], :sub.shape[1], :, rh, rw].set(sub)
  kernel = kernel.reshape(th, tw, c, dh * dw_ * o)
  # Input rows needed: u + e_r + t for u < U = ceil(m/d), all r and t.
  pads, units, e_min = [], [], []
  for n, (m, _, offset, t) in zip(x.shape[1:3], plans):
    u = -(-m // (len(offset)))
    lo = -min(offset)
    pads.append((lo, u + max(offset) - min(offset) + t - 1 - n - lo))
    units.append(u)
    e_min.append(min(offset))
  z = conv_s1(_pad_hw(x, pads), kernel)
  z = z.reshape(z.shape[:3] + (dh, dw_, o))
  (uh, uw), (mh, mw) = units, (plans[0][0], plans[1][0])
  phases = [[z[:, eh - e_min[0]:eh - e_min[0] + uh, ew - e_min[1]:ew - e_min[1] + uw, rh, rw]
             for rw, ew in enumerate(plans[1][2])]
            for rh, eh in enumerate(plans[0][2])]
  y = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # [B, U_h, d_h, U_w, d_w, O]
  return y.reshape(b, uh * dh, uw * dw_, o)[:, :mh, :mw]


# ----------------------------------------------------------------------------
# Flax modules.

def _pair(v, name: str) -> tuple[int, int]:
  if v is None:
    return (1, 1)
  if isinstance(v, int):
    return (v, v)
  v = tuple(v)
  if len(v) != 2:
    raise ValueError(f"{name} must be an int or two ints for a 2-D conv, got {v}")
  return v


def _flatten_batch(inputs: Array) -> tuple[Array, Callable[[Array], Array]]:
  """NHWC with one batch axis, and the function restoring linen's batch shape."""
  if inputs.ndim < 3:
    raise ValueError(f"expected [*batch, H, W, C] inputs, got shape {inputs.shape}")
  batch_shape = inputs.shape[:-3]
  x = inputs.reshape((-1,) + inputs.shape[-3:])
  return x, lambda y: y.reshape(batch_shape + y.shape[1:])


def _transpose_pads(k: int, s: int, padding: str) -> tuple[int, int]:
  """`lax.conv_transpose`'s padding of the dilated input for 'SAME'/'VALID'."""
  if padding == "SAME":
    total = k + s - 2
    lo = k - 1 if s > k - 1 else -(-total // 2)
  else:
    total = k + s - 2 + max(k - s, 0)
    lo = k - 1
  return lo, total - lo


class FastConv(nn.Module):
  """`flax.linen.Conv` for 2-D NHWC inputs, with fast CPU gradients.

  Same attributes (a subset: no dilation, groups, masks or local weights),
  parameters ('kernel' HWIO, 'bias') and initialisers as `nn.Conv`, so the
  two are interchangeable on one parameter tree.
  """
  features: int
  kernel_size: int | Sequence[int]
  strides: None | int | Sequence[int] = 1
  padding: Padding = "SAME"
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Callable = nn.linear.default_kernel_init
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, inputs: Array) -> Array:
    kernel_size = _pair(self.kernel_size, "kernel_size")
    strides = _pair(self.strides, "strides")
    x, restore = _flatten_batch(inputs)
    padding = nn.linear.canonicalize_padding(self.padding, 2)
    if padding in ("CIRCULAR", "REFLECT"):
      mode = {"CIRCULAR": "wrap", "REFLECT": "reflect"}[padding]
      x = jnp.pad(x, [(0, 0)] + [((k - 1) // 2, k // 2) for k in kernel_size] + [(0, 0)],
                  mode=mode)
      padding = "VALID"
    if padding in ("SAME", "VALID"):
      padding = lax.padtype_to_pads(x.shape[1:3], kernel_size, strides, padding)
    elif isinstance(padding, str):
      raise ValueError(f"FastConv does not support padding {padding!r}")
    kernel = self.param("kernel", self.kernel_init, kernel_size + (x.shape[-1], self.features),
                        self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) \
        if self.use_bias else None
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = conv(x, kernel, strides, tuple(padding))
    if bias is not None:
      y = y + bias
    return restore(y)


class FastConvTranspose(nn.Module):
  """`flax.linen.ConvTranspose` for 2-D NHWC inputs, with fast CPU gradients.

  Same attributes (a subset: no kernel dilation, masks or 'CIRCULAR'),
  parameters and initialisers as `nn.ConvTranspose`; `padding` pairs pad the
  stride-dilated input, as in `lax.conv_transpose`.
  """
  features: int
  kernel_size: int | Sequence[int]
  strides: None | int | Sequence[int] = None
  padding: Padding = "SAME"
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Callable = nn.linear.default_kernel_init
  bias_init: Callable = nn.initializers.zeros_init()
  transpose_kernel: bool = False

  @nn.compact
  def __call__(self, inputs: Array) -> Array:
    kernel_size = _pair(self.kernel_size, "kernel_size")
    strides = _pair(self.strides, "strides")
    x, restore = _flatten_batch(inputs)
    padding = nn.linear.canonicalize_padding(self.padding, 2)
    if padding in ("SAME", "VALID"):
      padding = [_transpose_pads(k, s, padding) for k, s in zip(kernel_size, strides)]
    elif isinstance(padding, str):
      raise ValueError(f"FastConvTranspose does not support padding {padding!r}")
    channels = (self.features, x.shape[-1]) if self.transpose_kernel else \
        (x.shape[-1], self.features)
    kernel = self.param("kernel", self.kernel_init, kernel_size + channels, self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) \
        if self.use_bias else None
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    if self.transpose_kernel:
      kernel = _flip_t(kernel)
    y = conv_transpose(x, kernel, strides, tuple(padding))
    if bias is not None:
      y = y + bias
    return restore(y)
