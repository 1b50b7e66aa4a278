"""Layers the architectures share: conv choice, norms, spectral norm, class heads.

Every architecture takes its convolution classes from `Convs`, resolved once
in `gemgan.models.build_models` (fast XLA:CPU convs or plain linen ones:
same parameters, same results), so no module asks which backend it runs on.
"""
import dataclasses
import functools
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

ModuleDef = Any


@dataclasses.dataclass(frozen=True)
class Convs:
  """The convolution classes and compute dtype every architecture is built with."""
  conv: ModuleDef = nn.Conv
  conv_transpose: ModuleDef = nn.ConvTranspose
  dtype: Any = jnp.float32


def resolve_convs(conv_impl: str, dtype=jnp.float32, backend: Optional[str] = None) -> Convs:
  """'fast' (gemgan.ops.conv), 'xla' (linen) or 'auto' (fast on CPU only)."""
  if conv_impl == "auto":
    conv_impl = "fast" if (backend or jax.default_backend()) == "cpu" else "xla"
  if conv_impl == "fast":
    from gemgan.ops import conv as fast_conv  # pylint: disable=g-import-not-at-top
    return Convs(fast_conv.FastConv, fast_conv.FastConvTranspose, dtype)
  return Convs(nn.Conv, nn.ConvTranspose, dtype)


def class_embedding(table, labels):
  """Rows of `table` for int labels [B], or soft mixes for weights [B, classes].

  Soft labels let sampling interpolate between classes.
  """
  if jnp.issubdtype(labels.dtype, jnp.integer):
    return table[labels]
  return labels.astype(table.dtype) @ table


class BatchNorm(nn.Module):
  """BatchNorm with Paddle's defaults (eps 1e-5), labels ignored."""
  momentum: float = 0.8
  dtype: Any = jnp.float32
  init_scale: Callable = nn.initializers.ones

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = True):
    del labels
    return nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                        epsilon=1e-5, dtype=self.dtype, scale_init=self.init_scale,
                        axis_name=None)(x)


class ConditionalBatchNorm(nn.Module):
  """BatchNorm whose scale and shift come from a per-class embedding."""
  num_classes: int
  momentum: float = 0.8
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels, *, train: bool = True):
    ch = x.shape[-1]
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                     epsilon=1e-5, use_scale=False, use_bias=False, dtype=self.dtype)(x)
    gamma = class_embedding(self.param("gamma", nn.initializers.ones, (self.num_classes, ch)),
                            labels)
    beta = class_embedding(self.param("beta", nn.initializers.zeros, (self.num_classes, ch)),
                           labels)
    return x * gamma[:, None, None, :].astype(x.dtype) + beta[:, None, None, :].astype(x.dtype)


class LayerNorm(nn.Module):
  """Per-sample LayerNorm over (H, W, C), as the WGAN-GP paper suggests for critics."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = True):
    del labels, train
    return nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1,
                        dtype=self.dtype)(x)


def generator_norm(num_classes: int, momentum: float, dtype, init_scale=nn.initializers.ones):
  """BatchNorm, or class-conditional BatchNorm when `num_classes` > 0."""
  if num_classes:
    return functools.partial(ConditionalBatchNorm, num_classes=num_classes, momentum=momentum,
                             dtype=dtype)
  return functools.partial(BatchNorm, momentum=momentum, dtype=dtype, init_scale=init_scale)


def critic_norm(name: str, momentum: float, dtype, init_scale=nn.initializers.ones):
  """config.model.critic_norm -> (norm layer or None, whether to spectrally normalise).

  "batch" couples the samples of a batch, so per-sample gradient penalties are
  then only approximate (the notebook's WGAN-GP did this).
  """
  norms = {
      "none": None, "spectral": None,
      "batch": functools.partial(BatchNorm, momentum=momentum, dtype=dtype,
                                 init_scale=init_scale),
      "layer": functools.partial(LayerNorm, dtype=dtype),
  }
  return norms[name], name == "spectral"


class MaybeSpectral(nn.Module):
  """Applies `layer`, spectrally normalised (one power iteration a step) if `spectral`."""
  layer: nn.Module
  spectral: bool = False

  @nn.compact
  def __call__(self, x, *, train: bool = True):
    if self.spectral:
      return nn.SpectralNorm(self.layer, n_steps=1)(x, update_stats=train)
    return self.layer(x)


class ProjectionHead(nn.Module):
  """Projection discriminator's class term (Miyato & Koyama 2018): <embed(y), features>.

  `features` are [B, C] (pooled by the caller); returns [B].
  """
  num_classes: int
  embedding_init: Callable = nn.initializers.normal(0.02)

  @nn.compact
  def __call__(self, features, labels):
    table = self.param("projection", self.embedding_init, (self.num_classes, features.shape[-1]))
    embed = class_embedding(table, labels)
    return jnp.sum(features * embed.astype(features.dtype), axis=-1)


def stage_channels(width: int, num_stages: int, max_mult: int = 8,
                   min_channels: int = 0) -> list[int]:
  """Channels from the coarsest stage to the finest: width * 8, ..., width * 2, width.

  The doubling per coarser stage of DCGAN and BigGAN, capped at `max_mult`;
  no stage below `min_channels` (which widens only the thin, fine stages).
  """
  return [max(width * min(2**(num_stages - 1 - i), max_mult), min_channels)
          for i in range(num_stages)]


def num_resamplings(image_size: int) -> tuple[int, int]:
  """(start, n): image_size = start * 2**n with start the first value <= 6.

  32, 64, 128 px start from 4x4 and 96 px from 6x6, as BigGAN's configs do.
  """
  start, n = image_size, 0
  while start > 6 and start % 2 == 0:
    start, n = start // 2, n + 1
  return start, n


# config.model.resample of the ResNet and FastGAN: nearest-up / pooled-down, or
# lowpass_up2 / lowpass_down2 below.
RESAMPLES = ("nearest", "lowpass")


def upsample_nearest(x, factor: int = 2):
  """Nearest-neighbour upsampling of [..., H, W, C] maps (x2 unless `factor` says)."""
  return jnp.repeat(jnp.repeat(x, factor, axis=-3), factor, axis=-2)


def avg_pool2(x):
  """2x2 average pooling of NHWC maps."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def space_to_depth2(x):
  """[B, H, W, C] -> [B, H/2, W/2, 4C]: each 2x2 pixel block becomes one position.

  Lossless and free of FLOPs: a critic entered this way runs its first block at
  half the resolution (TResNet's SpaceToDepth stem, Ridnik et al. 2021; a
  stride-2 2x2 conv, ConvNeXt's patchify stem, is this followed by a 1x1 conv).
  Channels are ordered (row phase, column phase, C).
  """
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def _shift(x, axis: int, by: int):
  """x moved by `by` along `axis`, zeros shifted in (upfirdn2d's zero padding)."""
  pad = [(0, 0)] * x.ndim
  pad[axis] = (by, 0) if by > 0 else (0, -by)
  x = jnp.pad(x, pad)
  n = x.shape[axis] - abs(by)
  return jax.lax.slice_in_dim(x, 0 if by > 0 else -by, (0 if by > 0 else -by) + n, axis=axis)


def lowpass_up2(x):
  """x2 upsampling with the [1, 2, 1] filter (R3GAN's, StyleGAN's upfirdn2d), NHWC.

  Per axis: out[2i] = x[i], out[2i + 1] = (x[i] + x[i + 1]) / 2 with zeros past
  the border, i.e. zero insertion then [1/2, 1, 1/2]: a separable linear
  interpolation that avoids nearest-neighbour's aliasing.
  """
  for axis in (1, 2):
    odd = 0.5 * (x + _shift(x, axis, -1))
    x = jnp.stack([x, odd], axis=axis + 1)
    shape = list(x.shape)
    shape[axis:axis + 2] = [shape[axis] * 2]
    x = x.reshape(shape)
  return x


def lowpass_down2(x):
  """x2 downsampling after the [1, 2, 1] / 4 low-pass filter, NHWC (zero padded)."""
  for axis in (1, 2):
    x = 0.25 * _shift(x, axis, 1) + 0.5 * x + 0.25 * _shift(x, axis, -1)
    x = jax.lax.slice_in_dim(x, 0, None, stride=2, axis=axis)
  return x


class SelfAttention(nn.Module):
  """SAGAN's self-attention (Zhang et al. 2019) over an NHWC map.

  Queries/keys at C/8 channels, values at C/2; the output joins the input
  through a scale that starts at 0, so the block starts as the identity.
  """
  conv: ModuleDef
  spectral: bool = False

  @nn.compact
  def __call__(self, x, *, train: bool = True):
    b, h, w, c = x.shape
    proj = lambda ch, name, v: MaybeSpectral(self.conv(ch, kernel_size=(1, 1), use_bias=False,
                                                       name=name), self.spectral)(v, train=train)
    q = proj(max(c // 8, 1), "query", x).reshape(b, h * w, -1)
    k = proj(max(c // 8, 1), "key", x).reshape(b, h * w, -1)
    v = proj(max(c // 2, 1), "value", x).reshape(b, h * w, -1)
    attn = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", q, k).astype(jnp.float32), axis=-1)
    out = jnp.einsum("bqk,bkc->bqc", attn.astype(v.dtype), v).reshape(b, h, w, -1)
    out = proj(c, "out", out)
    gamma = self.param("gamma", nn.initializers.zeros, ())
    return x + gamma.astype(x.dtype) * out
