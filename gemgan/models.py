"""Generators and critics (Flax linen, NHWC), parameterised by size and width.

Two families, both from the original notebook (`configs/*:seed` presets):

- `dcgan`: 4x4 stride-2 (PyTorch padding 1) convolutions, no biases,
  N(0, 0.02) init, BatchNorm in G and in D after its first layer, and a final
  valid conv in D. At 96 px and width 64 it is the notebook's DCGAN exactly
  (G 4,600,704 and D 2,775,808 trainable parameters).
- `wgan_gp`: 5x5 stride-2 'SAME' convolutions with biases; the critic ends in
  global average pooling and a dense layer. The notebook put BatchNorm and
  dropout in the critic, which makes the per-sample gradient penalty depend on
  the rest of the batch; our default critic has no normalisation
  (`critic_norm`: "none", "layer", "spectral", or the notebook's "batch").

Every generator starts from a 1x1 latent, makes an SxS map with one valid
transposed conv (S = image_size / 16) and doubles it four times, so 64, 96 and
128 px are the same network with a different first kernel.
"""
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

NUM_UPSAMPLES = 4
dcgan_init = nn.initializers.normal(0.02)


def _conv_layers(conv_impl: str):
  """(Conv, ConvTranspose) classes; both kinds have the same parameters."""
  if conv_impl == "auto":
    conv_impl = "fast" if jax.default_backend() == "cpu" else "xla"
  if conv_impl == "fast":
    from gemgan.ops import conv as fast_conv  # pylint: disable=g-import-not-at-top
    return fast_conv.FastConv, fast_conv.FastConvTranspose
  return nn.Conv, nn.ConvTranspose


class Generator(nn.Module):
  """z [B, latent] (+ labels [B]) -> images [B, S*16, S*16, 3] in [-1, 1]."""
  image_size: int = 96
  width: int = 64
  kind: str = "dcgan"  # "dcgan" (k4, no bias) or "wgan_gp" (k5 'SAME', bias)
  final_norm: bool = False  # the notebook's WGAN-GP normalises before tanh
  bias_before_norm: bool = False  # the notebook's: redundant, BatchNorm cancels it
  bn_momentum: float = 0.8
  num_classes: int = 0  # > 0: class-conditional BatchNorm
  conv_impl: str = "auto"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = True):
    _, ConvT = _conv_layers(self.conv_impl)
    dcgan = self.kind == "dcgan"
    start = self.image_size // 2**NUM_UPSAMPLES
    # A bias right before BatchNorm has zero gradient; Adam would still move
    # it by amplifying rounding noise, so only the seed preset keeps it.
    conv = functools.partial(
        ConvT, use_bias=not dcgan and self.bias_before_norm, dtype=self.dtype,
        kernel_init=dcgan_init if dcgan else nn.initializers.lecun_normal())
    if self.num_classes:
      norm = functools.partial(ConditionalBatchNorm, num_classes=self.num_classes,
                               momentum=self.bn_momentum, dtype=self.dtype)
    else:
      norm = functools.partial(BatchNorm, momentum=self.bn_momentum, dtype=self.dtype,
                               init_scale=_bn_scale_init(dcgan))

    def bn(x, name):
      return norm(name=name)(x, labels, train=train)

    x = z.reshape(z.shape[0], 1, 1, z.shape[-1]).astype(self.dtype)
    x = conv(self.width * 8, (start, start), padding="VALID", name="conv_0")(x)
    x = nn.relu(bn(x, "bn_0"))
    channels = [self.width * 4, self.width * 2, self.width, 3]
    # PyTorch's k4 s2 p1 transposed conv is lax padding k - 1 - p = 2 per side.
    up = dict(kernel_size=(4, 4), strides=(2, 2), padding=((2, 2), (2, 2))) if dcgan else \
        dict(kernel_size=(5, 5), strides=(2, 2), padding="SAME")
    for i, ch in enumerate(channels, start=1):
      last_bias = not dcgan and (self.bias_before_norm or not self.final_norm)
      x = conv(ch, name=f"conv_{i}", **up, **({"use_bias": last_bias} if ch == 3 else {}))(x)
      if ch != 3:
        x = nn.relu(bn(x, f"bn_{i}"))
      elif self.final_norm:
        x = bn(x, f"bn_{i}")
    return jnp.tanh(x.astype(jnp.float32))


class BatchNorm(nn.Module):
  """BatchNorm with Paddle's defaults (eps 1e-5), labels ignored."""
  momentum: float = 0.8
  dtype: Any = jnp.float32
  init_scale: Any = nn.initializers.ones

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


class Critic(nn.Module):
  """images [B, H, W, 3] (+ labels) -> logits/scores [B].

  With `num_classes` > 0 it is a projection discriminator (Miyato & Koyama
  2018): the score adds <embed(y), sum-pooled features>.
  """
  image_size: int = 96
  width: int = 64
  kind: str = "dcgan"
  norm: str = "batch"  # "none" | "batch" | "layer" | "spectral"
  dropout: float = 0.0
  bn_momentum: float = 0.8
  num_classes: int = 0
  conv_impl: str = "auto"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = True):
    Conv, _ = _conv_layers(self.conv_impl)
    dcgan = self.kind == "dcgan"
    down = dict(kernel_size=(4, 4), strides=(2, 2), padding=((1, 1), (1, 1))) if dcgan else \
        dict(kernel_size=(5, 5), strides=(2, 2), padding="SAME")
    kernel_init = dcgan_init if dcgan else nn.initializers.lecun_normal()
    x = x.astype(self.dtype)
    for i, ch in enumerate([self.width, self.width * 2, self.width * 4, self.width * 8]):
      x = self._wrap(Conv(ch, use_bias=not dcgan, kernel_init=kernel_init,
                          dtype=self.dtype, name=f"conv_{i}", **down), x, train)
      # DCGAN (and the notebook's critic) skip normalising the first layer.
      if self.norm == "batch" and (i > 0 or not dcgan):
        x = BatchNorm(self.bn_momentum, self.dtype, name=f"bn_{i}",
                      init_scale=_bn_scale_init(dcgan))(x, train=train)
      elif self.norm == "layer" and i > 0:
        # Per-sample over (H, W, C), as the WGAN-GP paper suggests.
        x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1,
                         dtype=self.dtype, name=f"ln_{i}")(x)
      x = nn.leaky_relu(x, 0.2)
      if self.dropout:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    features = x
    if dcgan:
      k = x.shape[1]
      head = Conv(1, kernel_size=(k, k), padding="VALID", use_bias=False,
                  kernel_init=kernel_init, dtype=self.dtype, name="head")
      out = self._wrap(head, x, train).reshape(x.shape[0])
    else:
      pooled = x.mean(axis=(1, 2))
      out = self._wrap(nn.Dense(1, dtype=self.dtype, name="head"), pooled, train)[:, 0]
    if self.num_classes:
      table = self.param("projection", nn.initializers.normal(0.02),
                         (self.num_classes, features.shape[-1]))
      embed = class_embedding(table, labels)
      out = out + jnp.sum(features.sum(axis=(1, 2)) * embed.astype(features.dtype), axis=-1)
    return out.astype(jnp.float32)

  def _wrap(self, layer, x, train):
    if self.norm == "spectral":
      return nn.SpectralNorm(layer, n_steps=1)(x, update_stats=train)
    return layer(x)


def _bn_scale_init(dcgan: bool):
  # The notebook draws DCGAN's BatchNorm scales from N(1, 0.02).
  if dcgan:
    return lambda key, shape, dtype=jnp.float32: 1.0 + 0.02 * jax.random.normal(key, shape, dtype)
  return nn.initializers.ones


def build_models(config: ml_collections.ConfigDict, num_classes: int = 0):
  """(generator, critic) modules for a config; `num_classes` if conditional."""
  m = config.model
  n = num_classes if m.conditional else 0
  dtype = jnp.bfloat16 if config.precision == "bfloat16" else jnp.float32
  common = dict(image_size=config.data.image_size, width=m.width, kind=m.name,
                bn_momentum=m.bn_momentum, num_classes=n, conv_impl=m.conv_impl, dtype=dtype)
  generator = Generator(final_norm=m.generator_final_norm,
                        bias_before_norm=m.bias_before_norm, **common)
  critic = Critic(norm=m.critic_norm, dropout=m.critic_dropout, **common)
  return generator, critic


def count_params(params) -> int:
  """Number of scalars in a parameter tree."""
  return sum(x.size for x in jax.tree_util.tree_leaves(params))


def init_variables(module: nn.Module, rng, inputs, labels=None):
  """Initialises `module` on `inputs`; returns its variables dict."""
  p_rng, d_rng = jax.random.split(rng)
  return module.init({"params": p_rng, "dropout": d_rng}, inputs, labels, train=False)


def class_embedding(table, labels):
  """Rows of `table` for int labels [B], or soft mixes for weights [B, classes].

  Soft labels let sampling interpolate between classes.
  """
  if jnp.issubdtype(labels.dtype, jnp.integer):
    return table[labels]
  return labels.astype(table.dtype) @ table
