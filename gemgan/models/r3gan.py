"""R3GAN's normalisation-free residual networks (Huang et al. 2024, arXiv:2501.05441).

As in brownvc/R3GAN's Networks.py:
- Residual block: 1x1 conv expanding the channels by `expansion`, biased
  LeakyReLU(0.2), grouped 3x3 conv (`group_width` channels per group),
  biased LeakyReLU, 1x1 conv back, initialised to zero, added to the input.
  No normalisation anywhere: the variance is kept by the init ("MSR": normal
  with std = gain / sqrt(fan_in)), whose gain in a block is the activation's
  times L^(-1/4) for L blocks in the network (Fixup-style), so the sum of L
  residual branches keeps unit variance at init.
- Resampling: [1, 2, 1] low-pass filters (`layers.lowpass_up2/down2`), with a
  1x1 conv where the width changes.
- G: a learned SxS basis scaled per channel by a linear map of z (and of a
  class embedding), stages of blocks, a 1x1 conv to RGB; no tanh (R3GAN's G
  is linear at the output).
- D: a 1x1 conv from RGB, stages of blocks, a depthwise SxS conv over the
  last map (the "discriminative basis"), a linear head; conditional D
  projects onto a class embedding (scaled by 1/sqrt(dim)).
Channels per stage follow `layers.stage_channels` (R3GAN's CIFAR config uses
one width throughout; set `max_mult=1` there to match it).
"""
import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from gemgan import config_checks
from gemgan.models import layers

ModuleDef = Any

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0 / (1.0 + LRELU_SLOPE**2))
EMBED_DIM = 128


def msr_init(gain: float):
  """N(0, (gain / sqrt(fan_in))^2), fan_in = kernel taps x input channels per group."""
  if gain == 0:
    return nn.initializers.zeros
  return nn.initializers.variance_scaling(gain**2, "fan_in", "normal")


class BiasedActivation(nn.Module):
  @nn.compact
  def __call__(self, x):
    bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
    return nn.leaky_relu(x + bias.astype(x.dtype), LRELU_SLOPE)


class ResidualBlock(nn.Module):
  num_blocks: int  # L: every block in the network, for the init scale
  conv: ModuleDef = nn.Conv
  expansion: int = 2
  group_width: int = 16  # 0: one group (a dense 3x3 conv)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    ch = x.shape[-1]
    wide = ch * self.expansion
    gain = LRELU_GAIN * self.num_blocks**(-1 / 4)  # 3 linear layers: L^(-1/(2*3-2))
    groups = wide // self.group_width if self.group_width else 1
    conv = lambda f, k, g, init, name, **kw: self.conv(
        f, (k, k), padding="SAME", use_bias=False, kernel_init=init, dtype=self.dtype,
        name=name, **kw)(g)
    y = conv(wide, 1, x, msr_init(gain), "expand")
    # FastConv runs the groups as one block-diagonal dense conv (XLA:CPU's grouped
    # convs are slow); nn.Conv (GPU) as a grouped conv. Same parameters.
    y = conv(wide, 3, BiasedActivation(name="act_0")(y), msr_init(gain), "grouped",
             feature_group_count=groups)
    y = conv(ch, 1, BiasedActivation(name="act_1")(y), msr_init(0.0), "project")
    return x + y


def _conv1x1(conv, features, name, dtype):
  return conv(features, (1, 1), use_bias=False, kernel_init=msr_init(1.0), dtype=dtype,
              name=name)


class DiscriminativeBasis(nn.Module):
  """R3GAN's depthwise SxS valid conv over the last SxS map: a per-channel weighted sum.

  Written as a product and a sum (the same numbers): XLA:CPU runs a
  depthwise conv's gradients as a slow loop.
  """
  @nn.compact
  def __call__(self, x):
    k, ch = x.shape[1], x.shape[-1]
    # HWIO with I = 1 (depthwise): fan_in = k * k, as the conv it replaces.
    w = self.param("kernel", msr_init(1.0), (k, k, 1, ch))
    return jnp.sum(x * w[:, :, 0].astype(x.dtype)[None], axis=(1, 2))


class _Network(nn.Module):
  """What G and D share: R3GAN's stage widths and its residual block, by config."""
  width: int
  conv: ModuleDef = nn.Conv
  blocks_per_stage: int = 2
  expansion: int = 2
  group_width: int = 16
  num_classes: int = 0
  dtype: Any = jnp.float32

  def block(self, num_stages: int, name: str) -> "ResidualBlock":
    """A residual block; its init scale counts every block of the network (L^-1/4)."""
    return ResidualBlock(num_stages * self.blocks_per_stage, self.conv, self.expansion,
                         self.group_width, self.dtype, name=name)


class Generator(_Network):
  """z [B, latent] (+ labels) -> images [B, size, size, 3] (linear output, ~[-1, 1])."""
  image_size: int = 32

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = True):
    del train  # no batch statistics anywhere
    start, n = layers.num_resamplings(self.image_size)
    channels = layers.stage_channels(self.width, n + 1)
    h = z.astype(self.dtype)
    if self.num_classes:
      table = self.param("embedding", msr_init(1.0), (self.num_classes, EMBED_DIM))
      h = jnp.concatenate([h, layers.class_embedding(table, labels).astype(h.dtype)], -1)
    basis = self.param("basis", nn.initializers.normal(1.0), (start, start, channels[0]))
    scale = nn.Dense(channels[0], use_bias=False, kernel_init=msr_init(1.0), dtype=self.dtype,
                     name="basis_scale")(h)
    x = basis[None].astype(self.dtype) * scale[:, None, None, :]
    for stage, ch in enumerate(channels):
      if stage:
        if ch != x.shape[-1]:
          x = _conv1x1(self.conv, ch, f"stage_{stage}_transition", self.dtype)(x)
        x = layers.lowpass_up2(x)
      for b in range(self.blocks_per_stage):
        x = self.block(n + 1, f"stage_{stage}_block_{b}")(x)
    return _conv1x1(self.conv, 3, "to_rgb", self.dtype)(x).astype(jnp.float32)


class Critic(_Network):
  """images [B, H, W, 3] (+ labels) -> scores [B]."""

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = True):
    del train
    _, n = layers.num_resamplings(x.shape[1])
    channels = layers.stage_channels(self.width, n + 1)[::-1]
    x = _conv1x1(self.conv, channels[0], "from_rgb", self.dtype)(x.astype(self.dtype))
    for stage, ch in enumerate(channels):
      if stage:
        x = layers.lowpass_down2(x)
        if ch != x.shape[-1]:
          x = _conv1x1(self.conv, ch, f"stage_{stage}_transition", self.dtype)(x)
      for b in range(self.blocks_per_stage):
        x = self.block(n + 1, f"stage_{stage}_block_{b}")(x)
    x = DiscriminativeBasis(name="basis")(x)
    out_dim = EMBED_DIM if self.num_classes else 1
    out = nn.Dense(out_dim, use_bias=False, kernel_init=msr_init(1.0), dtype=self.dtype,
                   name="head")(x)
    if self.num_classes:
      table = self.param("embedding", msr_init(1.0), (self.num_classes, EMBED_DIM))
      embed = layers.class_embedding(table, labels).astype(out.dtype)
      return (jnp.sum(out * embed, -1) / math.sqrt(EMBED_DIM)).astype(jnp.float32)
    return out[:, 0].astype(jnp.float32)


def build(config, num_classes: int, convs: layers.Convs):
  """The R3GAN pair; grouped convs use plain linen (the fast CPU convs have no groups)."""
  m = config.model
  kw = dict(conv=convs.conv, blocks_per_stage=m.blocks_per_stage, expansion=m.expansion,
            group_width=m.group_width, num_classes=num_classes, dtype=convs.dtype)
  return Generator(m.width, image_size=config.data.image_size, **kw), Critic(m.width, **kw)


def config_defaults() -> ml_collections.ConfigDict:
  """config.model's R3GAN keys (on top of config_lib's shared ones), at R3GAN's values."""
  return ml_collections.ConfigDict(dict(
      blocks_per_stage=2,  # R3GAN's configs: two residual blocks per resolution
      expansion=2,  # channel expansion inside a block (Networks.py)
      group_width=16,  # channels per group of the grouped 3x3 conv; 0: one group
  ))


def check_config(config, check) -> None:
  """Types and ranges of config_defaults(); `check(cond, key, message)` raises naming the key."""
  config_checks.integer(check, config, "model.blocks_per_stage", 1)
  config_checks.integer(check, config, "model.expansion", 1)
  config_checks.integer(check, config, "model.group_width", 0)
  m = config.model
  check(m.critic_norm == "none", "model.critic_norm",
        f"R3GAN is normalisation-free (its init keeps the variance): 'none', not "
        f"{m.critic_norm!r}")
  channels = m.width * m.expansion
  check(m.group_width == 0 or channels % m.group_width == 0, "model.group_width",
        f"{m.group_width} must divide width * expansion = {channels} (the grouped conv's "
        "channels), or be 0 (one group)")
