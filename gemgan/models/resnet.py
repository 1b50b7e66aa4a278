"""SNGAN/BigGAN-style residual networks (Miyato et al. 2018, Brock et al. 2019).

The architecture small-data GAN papers build on (DiffAugment-BigGAN, StudioGAN):

- G: z -> dense -> SxS map (S = 4, or 6 at 96 px), then one residual up-block
  per doubling (BN-ReLU-nearest x2-conv3x3-BN-ReLU-conv3x3, 1x1 shortcut),
  `blocks_per_stage - 1` more blocks at each resolution, BN-ReLU-conv3x3-tanh.
  Conditional runs use class-conditional BatchNorm.
- D: residual down-blocks (ReLU-conv3x3-ReLU-conv3x3-avgpool; the first one
  without the leading ReLU, SNGAN's "optimized" block), one more block at the
  last resolution, ReLU, sum pooling, dense, and a projection head for classes.
  Spectral norm on every layer when `critic_norm` is "spectral".
- `resample = "lowpass"` swaps nearest-up / average-pool-down for R3GAN's
  [1,2,1]-filtered resampling (StyleGAN2's upfirdn2d): less aliasing, the
  usual suspect behind checkerboard and plaid textures (Odena et al. 2016).
- `attention_res` > 0 puts SAGAN self-attention after the stage at that
  resolution, in both networks.
- `config.grow` (gemgan.growing): G trains first through an extra output
  head at a lower resolution, then fades in its later stages (ProGAN) as a
  residual on that head's upsampled output (StyleGAN2's skip generator).
- `critic_stem = "space_to_depth"` folds each 2x2 pixel block of the image
  into 12 channels before the first block, so the critic runs as the one of
  half the image size (a quarter of the full-resolution FLOPs) yet sees every
  pixel; `critic_width` sets its channels apart from G's.
"""
import functools
from typing import Any, Callable, Optional

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from gemgan import config_checks
from gemgan import growing
from gemgan.models import layers

ModuleDef = Any
init = nn.initializers.xavier_uniform()
CRITIC_STEMS = ("block", "space_to_depth")


class GBlock(nn.Module):
  features: int
  conv: ModuleDef
  norm: ModuleDef
  upsample: bool = True
  up2: Callable = layers.upsample_nearest

  @nn.compact
  def __call__(self, x, labels, *, train: bool = True):
    up = self.up2 if self.upsample else (lambda v: v)
    h = nn.relu(self.norm(name="norm_0")(x, labels, train=train))
    h = self.conv(self.features, (3, 3), name="conv_0")(up(h))
    h = nn.relu(self.norm(name="norm_1")(h, labels, train=train))
    h = self.conv(self.features, (3, 3), name="conv_1")(h)
    shortcut = up(x)
    if self.upsample or x.shape[-1] != self.features:
      shortcut = self.conv(self.features, (1, 1), name="shortcut")(shortcut)
    return h + shortcut


class DBlock(nn.Module):
  features: int
  conv: ModuleDef
  spectral: bool = False
  downsample: bool = True
  preactivation: bool = True  # False for the first block, which sees the image
  down2: Callable = layers.avg_pool2

  @nn.compact
  def __call__(self, x, *, train: bool = True):
    conv = lambda v, k, name: layers.MaybeSpectral(
        self.conv(self.features, (k, k), name=name), self.spectral)(v, train=train)
    down = self.down2 if self.downsample else (lambda v: v)
    h = nn.relu(x) if self.preactivation else x
    h = down(conv(nn.relu(conv(h, 3, "conv_0")), 3, "conv_1"))
    if not (self.downsample or x.shape[-1] != self.features):
      return h + x
    # SNGAN: the first block pools before its 1x1 shortcut, the others after.
    shortcut = conv(x, 1, "shortcut") if self.preactivation else conv(down(x), 1, "shortcut")
    return h + (down(shortcut) if self.preactivation else shortcut)


class Generator(nn.Module):
  """z [B, latent] (+ labels) -> images [B, size, size, 3] in [-1, 1].

  With `grow_size` (gemgan.growing) a second output head after the stage at
  that resolution, upsampled to full size; the full-size head, zero at
  initialisation, adds to it in logit space, scaled by the `grow`
  collection's alpha. `low_only` returns the low head alone and skips the
  later stages (the low-resolution phase's G).
  """
  image_size: int
  width: int
  conv: ModuleDef
  norm: ModuleDef
  blocks_per_stage: int = 1
  attention_res: int = 0
  dtype: Any = jnp.float32
  up2: Callable = layers.upsample_nearest
  grow_size: int = 0
  grow_upsample: str = "nearest"  # growing.UPSAMPLINGS
  low_only: bool = False
  min_channels: int = 0  # floor on every stage's channels; 0: width's table as is

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = True):
    def rgb_logits(x, suffix="", kernel_init=init):
      x = nn.relu(self.norm(name="norm_out" + suffix)(x, labels, train=train))
      return self.conv(3, (3, 3), name="conv_out" + suffix,
                       kernel_init=kernel_init)(x).astype(jnp.float32)

    start, n = layers.num_resamplings(self.image_size)
    channels = layers.stage_channels(self.width, n + 1, min_channels=self.min_channels)
    x = nn.Dense(start * start * channels[0], kernel_init=init, dtype=self.dtype,
                 name="dense")(z.astype(self.dtype))
    x = x.reshape(z.shape[0], start, start, channels[0])
    low = None
    for stage, ch in enumerate(channels[1:]):
      for block in range(self.blocks_per_stage):
        x = GBlock(ch, self.conv, self.norm, upsample=block == 0, up2=self.up2,
                   name=f"stage_{stage}_block_{block}")(x, labels, train=train)
      if x.shape[1] == self.attention_res:
        x = layers.SelfAttention(self.conv, name="attention")(x, train=train)
      if x.shape[1] == self.grow_size:
        low = growing.upsample(rgb_logits(x, f"_{self.grow_size}"),
                               self.image_size // self.grow_size, self.grow_upsample)
        if self.low_only:
          return jnp.tanh(low)
    if low is None:
      return jnp.tanh(rgb_logits(x))
    # StyleGAN2's skip output: the later stages add to the upsampled low-resolution
    # image, from zero (their head starts at zero, then fades in by alpha).
    alpha = self.variable(growing.COLLECTION, "alpha", jnp.zeros, (), jnp.float32).value
    return jnp.tanh(low + alpha * rgb_logits(x, kernel_init=nn.initializers.zeros))


class Critic(nn.Module):
  """images [B, H, W, 3] (+ labels) -> scores [B]; projection head when conditional."""
  width: int
  conv: ModuleDef
  spectral: bool = False
  blocks_per_stage: int = 1
  attention_res: int = 0
  num_classes: int = 0
  dtype: Any = jnp.float32
  down2: Callable = layers.avg_pool2
  stem: str = "block"  # or "space_to_depth": see the module docstring

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = True):
    if self.stem == "space_to_depth":
      x = layers.space_to_depth2(x)
    _, n = layers.num_resamplings(x.shape[1])
    channels = layers.stage_channels(self.width, n)[::-1]
    x = x.astype(self.dtype)
    for stage, ch in enumerate(channels + channels[-1:]):
      for block in range(self.blocks_per_stage):
        x = DBlock(ch, self.conv, self.spectral,
                   downsample=block == self.blocks_per_stage - 1 and stage < n,
                   preactivation=stage + block > 0, down2=self.down2,
                   name=f"stage_{stage}_block_{block}")(x, train=train)
      if stage < n and x.shape[1] == self.attention_res:
        x = layers.SelfAttention(self.conv, self.spectral, name="attention")(x, train=train)
    features = nn.relu(x).sum(axis=(1, 2))
    dense = nn.Dense(1, kernel_init=init, dtype=self.dtype, name="head")
    out = layers.MaybeSpectral(dense, self.spectral)(features, train=train)[:, 0]
    if self.num_classes:
      out = out + layers.ProjectionHead(self.num_classes, init)(features, labels)
    return out.astype(jnp.float32)


def build(config, num_classes: int, convs: layers.Convs):
  """The ResNet pair for `config.model` (width, blocks_per_stage, attention_res)."""
  m, dt = config.model, convs.dtype
  conv = functools.partial(convs.conv, padding="SAME", kernel_init=init, dtype=dt)
  norm = layers.generator_norm(num_classes, m.bn_momentum, dt)
  lowpass = m.resample == "lowpass"
  generator = Generator(config.data.image_size, m.width, conv, norm, m.blocks_per_stage,
                        m.attention_res, dt,
                        up2=layers.lowpass_up2 if lowpass else layers.upsample_nearest,
                        grow_size=config.grow.size, grow_upsample=config.grow.upsample,
                        min_channels=m.generator_min_channels)
  critic = Critic(m.critic_width or m.width, conv, m.critic_norm == "spectral",
                  m.blocks_per_stage, m.attention_res, num_classes, dt,
                  down2=layers.lowpass_down2 if lowpass else layers.avg_pool2,
                  stem=m.critic_stem)
  return generator, critic


def config_defaults() -> ml_collections.ConfigDict:
  """config.model's ResNet keys (on top of config_lib's shared ones)."""
  return ml_collections.ConfigDict(dict(
      blocks_per_stage=1,  # SNGAN's CIFAR nets: one residual block per resolution
      attention_res=0,  # resolution of the SAGAN self-attention block; 0: none
      # "nearest" (nearest-neighbour up, average-pool down) or "lowpass" ([1,2,1]-
      # filtered up and down, R3GAN's): less aliasing, fewer checkerboards.
      resample="nearest",
      critic_width=0,  # the critic's base channels; 0: model.width
      # Fewest channels of any G stage: widens the last stages alone (where
      # width's halving per stage leaves few) and keeps the coarse ones' cost.
      generator_min_channels=0,
      # "block" (SNGAN's first block at full resolution) or "space_to_depth"
      # (2x2 pixel blocks as channels: the critic of half the image size).
      critic_stem="block",
  ))


def check_config(config, check) -> None:
  """Types and ranges of config_defaults(); `check(cond, key, message)` raises naming the key."""
  config_checks.integer(check, config, "model.blocks_per_stage", 1)
  config_checks.integer(check, config, "model.attention_res", 0)
  config_checks.choice(check, config, "model.resample", layers.RESAMPLES)
  config_checks.integer(check, config, "model.critic_width", 0, " (0: model.width)")
  config_checks.choice(check, config, "model.critic_stem", CRITIC_STEMS)
  config_checks.integer(check, config, "model.generator_min_channels", 0, " (0: no floor)")
  norm = config.model.critic_norm
  check(norm in ("none", "spectral"), "model.critic_norm",
        f"the ResNet critic has no normalisation layers: 'spectral' or 'none', not {norm!r}")
