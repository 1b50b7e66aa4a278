"""Convolutions with fast gradients on XLA:CPU, and Flax modules using them.

XLA:CPU runs forward convolutions fast (YNNPACK), and input-dilated ones
(transposed convs) reasonably (Eigen), but lowers the weight gradient of an
input-dilated convolution, the one JAX's autodiff emits for every transposed
conv and for the second derivative of every strided conv (a gradient
penalty's), to a naive loop: 1-3 GFLOP/s, 20-50x slower than the forward conv.

Here one convolution `lax.conv_general_dilated(x, w, strides, padding,
lhs_dilation=dilation)` (NHWC/HWIO) is a `jax.custom_vjp` function whose
backward rule computes
- the input gradient as the same kind of convolution, strides and dilation
  swapped, with the flipped kernel, and
- the weight gradient with a second `jax.custom_vjp` function that always
  issues a window-dilated (strided) conv, which XLA hands to YNNPACK: for a
  transposed conv, output gradient and input swap roles.
The weight gradient's own backward rule is again two such convolutions, so
second derivatives (gradient penalties, R1) stay on the fast paths too.
Results equal `lax.conv_general_dilated` and its autodiff up to float
rounding (tests/test_fast_conv.py).

`FastConv` and `FastConvTranspose` are drop-in replacements for
`flax.linen.Conv` and `flax.linen.ConvTranspose` (same attributes, parameter
names, shapes and initialisers) for 2-D NHWC inputs.
"""
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array
Padding = str | int | Sequence[int | tuple[int, int]]
Pairs = tuple[tuple[int, int], tuple[int, int]]
_DN = ("NHWC", "HWIO", "NHWC")

# Lowerings of the forward convolutions; experiments switch these (see
# experiments/cpu_speed/). "lax": one XLA convolution. "s2d": a strided conv
# as a stride-1 conv on the space-to-depth input. "subpixel": a transposed
# conv as a stride-1 conv producing every output phase, then depth-to-space
# (YNNPACK instead of Eigen; computes the zero taps of kernels that the
# stride does not divide). "auto": subpixel where it measured faster on
# XLA:CPU (inputs >= 12 px, >= 16 output channels: the models' 24->48 px
# layer 1.7x, 12->24 px 1.35x; 6->12 px and 3-channel outputs slower) and
# for inputs smaller than the kernel. Whatever the setting, a conv whose
# input has fewer pixels than its kernel has taps runs as one matmul over
# gathered patches (see `_swapped_by_xla`: 30-70x faster).
BACKEND = {"strided": "lax", "transposed": "auto"}


def _pad_hw(x: Array, pads) -> Array:
  """Zero-pads (or, for negative amounts, crops) the two spatial axes."""
  (a, b), (c, d) = pads
  return lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (a, b, 0), (c, d, 0), (0, 0, 0)))


def _flip_t(w: Array) -> Array:
  """HWIO kernel -> spatially flipped HWOI kernel (the input-gradient kernel)."""
  return jnp.flip(w, (0, 1)).swapaxes(2, 3)


def _swapped_by_xla(x: Array, w: Array) -> bool:
  """Whether XLA would swap a conv's operands (its ConvOperandSwapper makes
  the input the kernel when the kernel has more taps than the input has
  pixels; XLA folds zero padding into the conv first, so `x` is unpadded).
  XLA:CPU runs the swapped form as a naive loop, 10-100x slower."""
  return w.shape[0] * w.shape[1] > x.shape[1] * x.shape[2]


def _patches_matmul(x, w, strides, dilation, padding):
  """The convolution as one matmul over its gathered input patches: for the
  small inputs where XLA would swap the operands (see `_swapped_by_xla`)."""
  (sh, sw), (kh, kw) = strides, w.shape[:2]
  x = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0),) + tuple(
      (lo, hi, d - 1) for (lo, hi), d in zip(padding, dilation)) + ((0, 0, 0),))
  oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
  patches = jnp.stack([x[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw]
                       for i in range(kh) for j in range(kw)], axis=3)
  return jnp.einsum("nijtc,tco->nijo", patches, w.reshape((kh * kw,) + w.shape[2:]))


def _conv_s1(x: Array, w: Array, pads=((0, 0), (0, 0))) -> Array:
  """Stride-1 conv of x zero-padded (or cropped) by `pads`, 'VALID'."""
  if _swapped_by_xla(x, w):
    return _patches_matmul(x, w, (1, 1), (1, 1), pads)
  return lax.conv_general_dilated(_pad_hw(x, pads), w, (1, 1), "VALID", dimension_numbers=_DN)


# ----------------------------------------------------------------------------
# Forward lowerings (never differentiated by JAX: the custom VJPs below are).

def _conv_impl(x, w, strides, dilation, padding):
  if x.shape[1:3] == (1, 1) and strides == dilation == (1, 1):
    return _conv_1x1_input(x, w, padding)
  if dilation == (1, 1) and strides != (1, 1) and BACKEND["strided"] == "s2d":
    return _space_to_depth_conv(x, w, strides, padding)
  small = _swapped_by_xla(x, w)
  if strides == (1, 1) and dilation != (1, 1) and (
      BACKEND["transposed"] == "subpixel" or BACKEND["transposed"] == "auto" and (
          small or min(x.shape[1:3]) >= 12 and w.shape[-1] >= 16)):
    return _subpixel_conv(x, w, dilation, padding)
  if small:
    return _patches_matmul(x, w, strides, dilation, padding)
  return lax.conv_general_dilated(x, w, strides, padding, lhs_dilation=dilation,
                                  dimension_numbers=_DN)


def _wgrad_conv(x, g, pads, rhs_dilation):
  """sum_{n,i} x_pad[n, s*i + k, c] g[n, i, o] -> [K, K, C, O], as a conv.

  x's channels act as the batch, the batch is contracted, and g is the
  (window-dilated) kernel. The transposes are explicit so that the conv is
  in XLA:CPU's canonical NHWC/HWIO form: inside loop bodies (`lax.scan`)
  XLA does not canonicalise convs and runs other layouts in a naive loop.
  """
  out = lax.conv_general_dilated(x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), (1, 1), pads,
                                 rhs_dilation=rhs_dilation, dimension_numbers=_DN)
  return out.transpose(1, 2, 0, 3)


def _wgrad_impl(x, g, kernel_hw, strides, dilation, padding):
  """dL/dw of `_conv(x, w, ...)` for output gradient g, as a strided conv."""
  if x.shape[1:3] == (1, 1) and strides == dilation == (1, 1):
    # dw[k] = x^T g[lo - k]: g reversed and cropped to the kernel's extent.
    pads = [(-(m - 1 - lo), k - 1 - lo) for m, k, (lo, _) in
            zip(g.shape[1:3], kernel_hw, padding)]
    return jnp.einsum("nc,nijo->ijco", x[:, 0, 0], _pad_hw(jnp.flip(g, (1, 2)), pads))
  if dilation == (1, 1):
    # dw[k] = sum_i x_pad[s*i + k] g[i]: g is a kernel dilated by s.
    pads = tuple((lo, k + (m - 1) * s - n - lo) for n, m, k, s, (lo, _) in
                 zip(x.shape[1:3], g.shape[1:3], kernel_hw, strides, padding))
    return _wgrad_conv(x, g, pads, strides)
  if strides == (1, 1):
    # Input-dilated: only x_dilated[lo + d*i] != 0, so with k' = K-1-k,
    # dw[k] = sum_i g_pad[d*i + k'] x[i] (g_pad: g padded by K-1-lo), the
    # weight gradient of a stride-d conv of g with output gradient x.
    pads = tuple((k - 1 - lo, (n - 1) * d + 1 - m + lo) for n, m, k, d, (lo, _) in
                 zip(x.shape[1:3], g.shape[1:3], kernel_hw, dilation, padding))
    return _flip_t(_wgrad_conv(g, x, pads, dilation))
  zeros = jnp.zeros(tuple(kernel_hw) + (x.shape[-1], g.shape[-1]), x.dtype)
  return jax.vjp(lambda w: lax.conv_general_dilated(
      x, w, strides, padding, lhs_dilation=dilation, dimension_numbers=_DN), zeros)[1](g)[0]


def _conv_1x1_input(x, w, padding):
  """A 1x1 input (a latent vector): output pixel i sees tap lo - i only.

  One matmul instead of a conv over a mostly-zero padded input (the DCGAN
  generator's first layer wastes 97% of its FLOPs as a conv).
  """
  k_hw = w.shape[:2]
  out_hw = [lo + hi - k + 2 for k, (lo, hi) in zip(k_hw, padding)]
  # w_eff[i] = w[lo - i] (zero outside the kernel) = w reversed, from K-1-lo.
  pads = [(-(k - 1 - lo), m - 1 - lo) for k, m, (lo, _) in zip(k_hw, out_hw, padding)]
  w_eff = lax.pad(jnp.flip(w, (0, 1)), jnp.zeros((), w.dtype),
                  tuple((a, b, 0) for a, b in pads) + ((0, 0, 0), (0, 0, 0)))
  return jnp.einsum("nc,ijco->nijo", x[:, 0, 0], w_eff)


def _space_to_depth_conv(x, w, strides, padding):
  """Strided conv = stride-1 conv on the s-fold folded input.

  Output row i reads padded rows s*i .. s*i+K-1: rows i .. i+ceil(K/s)-1 of
  the folded input, whose channels are (row phase, column phase, C).
  """
  b, c, o = x.shape[0], x.shape[-1], w.shape[-1]
  pads, kq, lq = [], [], []
  for n, k, s, (lo, hi) in zip(x.shape[1:3], w.shape[:2], strides, padding):
    m = (n + lo + hi - k) // s + 1
    q = -(-k // s)  # taps per phase
    length = (m - 1 + q) * s  # padded length, a multiple of s
    pads.append((lo, length - n - lo))
    kq.append(q)
    lq.append(length // s)
  (sh, sw), (qh, qw) = strides, kq
  x = _pad_hw(x, pads).reshape(b, lq[0], sh, lq[1], sw, c).transpose(0, 1, 3, 2, 4, 5)
  x = x.reshape(b, lq[0], lq[1], sh * sw * c)
  w = jnp.pad(w, ((0, qh * sh - w.shape[0]), (0, qw * sw - w.shape[1]), (0, 0), (0, 0)))
  w = w.reshape(qh, sh, qw, sw, c, o).transpose(0, 2, 1, 3, 4, 5).reshape(qh, qw, sh * sw * c, o)
  return _conv_s1(x, w)


def _subpixel_conv(x, w, dilation, padding):
  """Input-dilated conv = stride-1 conv computing all d*d output phases.

  Output row q = d*u + r reads input rows u + e_r + t with kernel taps
  k_r + d*t, where k_r = (lo - r) mod d and e_r = (r + k_r - lo) / d.
  """
  b, c, o = x.shape[0], x.shape[-1], w.shape[-1]
  plans = []
  for n, k, d, (lo, hi) in zip(x.shape[1:3], w.shape[:2], dilation, padding):
    m = (n - 1) * d + 1 + lo + hi - k + 1
    first = [(lo - r) % d for r in range(d)]
    offset = [(r + kr - lo) // d for r, kr in enumerate(first)]
    taps = max(-(-(k - kr) // d) for kr in first)
    units = -(-m // d)
    e0 = min(offset)
    pad = (-e0, units + max(offset) - e0 + taps - 1 - n + e0)
    plans.append((m, first, offset, taps, units, e0, pad))
  (dh, dw), (ph, pw) = dilation, plans
  kernel = jnp.zeros((ph[3], pw[3], c, dh, dw, o), w.dtype)
  for rh, kh0 in enumerate(ph[1]):
    for rw, kw0 in enumerate(pw[1]):
      sub = w[kh0::dh, kw0::dw]
      kernel = kernel.at[:sub.shape[0], :sub.shape[1], :, rh, rw].set(sub)
  z = _conv_s1(x, kernel.reshape(ph[3], pw[3], c, dh * dw * o), (ph[6], pw[6]))
  z = z.reshape(z.shape[:3] + (dh, dw, o))
  rows = [jnp.stack([z[:, eh - ph[5]:eh - ph[5] + ph[4], ew - pw[5]:ew - pw[5] + pw[4], rh, rw]
                     for rw, ew in enumerate(pw[2])], axis=3)
          for rh, eh in enumerate(ph[2])]
  y = jnp.stack(rows, axis=2)  # [B, U_h, d_h, U_w, d_w, O]
  return y.reshape(b, ph[4] * dh, pw[4] * dw, o)[:, :ph[0], :pw[0]]


# ----------------------------------------------------------------------------
# The differentiable pair: _conv and its weight gradient _wgrad.

@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(x, w, strides, dilation, padding):
  return _conv_impl(x, w, strides, dilation, padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _wgrad(x, g, kernel_hw, strides, dilation, padding):
  return _wgrad_impl(x, g, kernel_hw, strides, dilation, padding)


def _input_grad(g, w, in_hw, strides, dilation, padding):
  """d<g, _conv(x, w)>/dx: the conv of g with the flipped kernel, the forward
  conv's strides as input dilation and its input dilation as strides."""
  pads = []
  for n, m, k, s, d, (lo, _) in zip(in_hw, g.shape[1:3], w.shape[:2], strides, dilation,
                                    padding):
    lo_t = k - 1 - lo
    pads.append((lo_t, (n - 1) * d + k - (m - 1) * s - 1 - lo_t))
  return _conv(g, _flip_t(w), dilation, strides, tuple(pads))


def _conv_fwd(x, w, strides, dilation, padding):
  return _conv(x, w, strides, dilation, padding), (x, w)


def _conv_bwd(strides, dilation, padding, res, g):
  x, w = res
  return (_input_grad(g, w, x.shape[1:3], strides, dilation, padding),
          _wgrad(x, g, w.shape[:2], strides, dilation, padding))


def _wgrad_fwd(x, g, kernel_hw, strides, dilation, padding):
  return _wgrad(x, g, kernel_hw, strides, dilation, padding), (x, g)


def _wgrad_bwd(kernel_hw, strides, dilation, padding, res, w_bar):
  # _wgrad is bilinear: <w_bar, _wgrad(x, g)> = <g, _conv(x, w_bar)>.
  x, g = res
  return (_input_grad(g, w_bar, x.shape[1:3], strides, dilation, padding),
          _conv(x, w_bar, strides, dilation, padding))


_conv.defvjp(_conv_fwd, _conv_bwd)
_wgrad.defvjp(_wgrad_fwd, _wgrad_bwd)


def _check(x, w, strides, dilation, padding) -> tuple[tuple[int, int], Pairs]:
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  for n, k, s, d, (lo, hi) in zip(x.shape[1:3], w.shape[:2], strides, dilation, padding):
    if (n - 1) * d + 1 + lo + hi - k < 0:
      raise ValueError(f"convolution output would be empty: input {n}, kernel {k}, "
                       f"stride {s}, input dilation {d}, padding {(lo, hi)}")
  return padding


def conv(x: Array, w: Array, strides: Sequence[int], padding) -> Array:
  """`lax.conv_general_dilated(x, w, strides, padding)`, NHWC x HWIO, with fast
  gradients of every order. `padding`: two (low, high) pairs."""
  strides = tuple(int(s) for s in strides)
  return _conv(x, w, strides, (1, 1), _check(x, w, strides, (1, 1), padding))


def conv_transpose(x: Array, w: Array, strides: Sequence[int], padding) -> Array:
  """`lax.conv_transpose(x, w, strides, padding)` (`transpose_kernel=False`)
  with explicit padding pairs of the dilated input, with fast gradients.

  That is `lax.conv_general_dilated(x, w, 1, padding, lhs_dilation=strides)`.
  """
  strides = tuple(int(s) for s in strides)
  return _conv(x, w, (1, 1), strides, _check(x, w, (1, 1), strides, padding))


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


def _kernel_and_bias(module: nn.Module, x: Array, kernel_shape: tuple[int, ...]):
  """(x, kernel, bias or None) promoted to module.dtype: the module's 'kernel'
  and 'bias' parameters, declared as linen's convolutions declare them."""
  kernel = module.param("kernel", module.kernel_init, kernel_shape, module.param_dtype)
  bias = module.param("bias", module.bias_init, (module.features,), module.param_dtype) \
      if module.use_bias else None
  return nn.dtypes.promote_dtype(x, kernel, bias, dtype=module.dtype)


def block_diagonal(kernel: Array, groups: int) -> Array:
  """A grouped conv's HWIO kernel [h, w, in / groups, out] -> the dense kernel
  [h, w, in, out] that computes the same conv (zeros off the groups' blocks).

  XLA:CPU has no fast grouped convolution (R3GAN at 32 px, width 16, batch 64:
  27.8 s an iteration with linen's grouped conv, 2.3 s with this); the dense
  form runs on the fast path at `groups` times the FLOPs, and autodiff through
  it gives the grouped kernel's gradient.
  """
  h, w, in_per_group, out = kernel.shape
  k = kernel.reshape(h, w, in_per_group, groups, out // groups)
  dense = jnp.einsum("hwigo,gG->hwgiGo", k, jnp.eye(groups, dtype=kernel.dtype))
  return dense.reshape(h, w, groups * in_per_group, out)


class FastConv(nn.Module):
  """`flax.linen.Conv` for 2-D NHWC inputs, with fast CPU gradients.

  Same attributes (a subset: no dilation, masks or local weights; groups as
  a block-diagonal dense kernel), parameters ('kernel' HWIO, 'bias') and
  initialisers as `nn.Conv`, so the two are interchangeable on one parameter
  tree.
  """
  features: int
  kernel_size: int | Sequence[int]
  strides: None | int | Sequence[int] = 1
  padding: Padding = "SAME"
  feature_group_count: int = 1
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
    groups = self.feature_group_count
    if x.shape[-1] % groups or self.features % groups:
      raise ValueError(f"FastConv: {x.shape[-1]} input and {self.features} output channels "
                       f"do not split into {groups} groups")
    x, kernel, bias = _kernel_and_bias(self, x,
                                       kernel_size + (x.shape[-1] // groups, self.features))
    if groups > 1:
      kernel = block_diagonal(kernel, groups)
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
    x, kernel, bias = _kernel_and_bias(self, x, kernel_size + channels)
    if self.transpose_kernel:
      kernel = _flip_t(kernel)
    y = conv_transpose(x, kernel, strides, tuple(padding))
    if bias is not None:
      y = y + bias
    return restore(y)
