"""The notebook's networks: a stack of stride-2 convolutions (DCGAN and WGAN-GP).

One generator and one critic module; the two families differ only in the
layers they are given, bound in `dcgan` / `wgan_gp` below (as Flax's imagenet
example binds ResNet variants):

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
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gemgan import config_checks
from gemgan.models import layers

NUM_UPSAMPLES = 4
dcgan_init = nn.initializers.normal(0.02)
ModuleDef = Any


class Generator(nn.Module):
  """z [B, latent] (+ labels [B]) -> images [B, S*16, S*16, 3] in [-1, 1].

  `up` is the stride-2 transposed conv (kernel, padding and init bound);
  `hidden_bias` / `out_bias` say which layers carry biases: a bias right
  before BatchNorm has zero gradient (Adam would still move it by amplifying
  rounding noise), so only the notebook's seed preset keeps those.
  """
  image_size: int
  width: int
  up: ModuleDef
  norm: ModuleDef
  hidden_bias: bool = False
  out_bias: bool = False
  final_norm: bool = False  # the notebook's WGAN-GP normalises before tanh
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = True):
    start = self.image_size // 2**NUM_UPSAMPLES
    bn = lambda x, name: self.norm(name=name)(x, labels, train=train)
    x = z.reshape(z.shape[0], 1, 1, z.shape[-1]).astype(self.dtype)
    x = self.up(self.width * 8, kernel_size=(start, start), strides=(1, 1), padding="VALID",
                use_bias=self.hidden_bias, name="conv_0")(x)
    x = nn.relu(bn(x, "bn_0"))
    for i, ch in enumerate([self.width * 4, self.width * 2, self.width], start=1):
      x = nn.relu(bn(self.up(ch, use_bias=self.hidden_bias, name=f"conv_{i}")(x), f"bn_{i}"))
    x = self.up(3, use_bias=self.out_bias, name="conv_4")(x)
    if self.final_norm:
      x = bn(x, "bn_4")
    return jnp.tanh(x.astype(jnp.float32))


class Critic(nn.Module):
  """images [B, H, W, 3] (+ labels) -> logits/scores [B].

  `down` is the stride-2 conv; `norm` (or None) follows each conv but the
  first when `skip_first_norm` (DCGAN's); `head` is "conv" (a valid conv over
  the last map, DCGAN) or "dense" (global average pool + dense, WGAN-GP).
  With `num_classes` > 0 it is a projection discriminator.
  """
  width: int
  down: ModuleDef
  head_conv: ModuleDef
  norm: Optional[ModuleDef] = None
  spectral: bool = False
  skip_first_norm: bool = False
  head: str = "dense"
  dropout: float = 0.0
  num_classes: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = True):
    wrap = lambda layer, x: layers.MaybeSpectral(layer, self.spectral)(x, train=train)
    x = x.astype(self.dtype)
    for i, ch in enumerate([self.width, self.width * 2, self.width * 4, self.width * 8]):
      x = wrap(self.down(ch, name=f"conv_{i}"), x)
      if self.norm is not None and (i > 0 or not self.skip_first_norm):
        x = self.norm(name=f"norm_{i}")(x, train=train)
      x = nn.leaky_relu(x, 0.2)
      if self.dropout:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    features = x.sum(axis=(1, 2))
    if self.head == "conv":
      k = x.shape[1]
      out = wrap(self.head_conv(1, kernel_size=(k, k), padding="VALID", name="head"), x)
    else:
      out = wrap(nn.Dense(1, dtype=self.dtype, name="head"), x.mean(axis=(1, 2)))
    out = out.reshape(x.shape[0])
    if self.num_classes:
      out = out + layers.ProjectionHead(self.num_classes)(features, labels)
    return out.astype(jnp.float32)


def _bn_scale_init_dcgan(key, shape, dtype=jnp.float32):
  # The notebook draws DCGAN's BatchNorm scales from N(1, 0.02).
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def build_dcgan(config, num_classes: int, convs: layers.Convs):
  """The notebook's DCGAN pair for `config` (4x4 kernels, no biases)."""
  m, dt = config.model, convs.dtype
  up = functools.partial(convs.conv_transpose, kernel_size=(4, 4), strides=(2, 2),
                         # PyTorch's k4 s2 p1 transposed conv is lax padding k - 1 - p = 2.
                         padding=((2, 2), (2, 2)), kernel_init=dcgan_init, dtype=dt)
  down = functools.partial(convs.conv, kernel_size=(4, 4), strides=(2, 2),
                           padding=((1, 1), (1, 1)), use_bias=False, kernel_init=dcgan_init,
                           dtype=dt)
  head = functools.partial(convs.conv, use_bias=False, kernel_init=dcgan_init, dtype=dt)
  g_norm = layers.generator_norm(num_classes, m.bn_momentum, dt, _bn_scale_init_dcgan)
  d_norm, spectral = layers.critic_norm(m.critic_norm, m.bn_momentum, dt, _bn_scale_init_dcgan)
  generator = Generator(config.data.image_size, m.width, up, g_norm,
                        final_norm=m.generator_final_norm, dtype=dt)
  critic = Critic(m.width, down, head, d_norm, spectral, skip_first_norm=True, head="conv",
                  dropout=m.critic_dropout, num_classes=num_classes, dtype=dt)
  return generator, critic


def build_wgan_gp(config, num_classes: int, convs: layers.Convs):
  """The notebook's WGAN-GP pair for `config` (5x5 'SAME' kernels with biases)."""
  m, dt = config.model, convs.dtype
  init = nn.initializers.lecun_normal()
  up = functools.partial(convs.conv_transpose, kernel_size=(5, 5), strides=(2, 2),
                         padding="SAME", kernel_init=init, dtype=dt)
  down = functools.partial(convs.conv, kernel_size=(5, 5), strides=(2, 2), padding="SAME",
                           kernel_init=init, dtype=dt)
  g_norm = layers.generator_norm(num_classes, m.bn_momentum, dt)
  d_norm, spectral = layers.critic_norm(m.critic_norm, m.bn_momentum, dt)
  generator = Generator(config.data.image_size, m.width, up, g_norm,
                        hidden_bias=m.bias_before_norm,
                        out_bias=m.bias_before_norm or not m.generator_final_norm,
                        final_norm=m.generator_final_norm, dtype=dt)
  # LayerNorm skips the first layer as the WGAN-GP paper's critic; BatchNorm does not.
  critic = Critic(m.width, down, down, d_norm, spectral,
                  skip_first_norm=m.critic_norm == "layer", head="dense",
                  dropout=m.critic_dropout, num_classes=num_classes, dtype=dt)
  return generator, critic


def dcgan_defaults() -> ml_collections.ConfigDict:
  """config.model's DCGAN keys (on top of config_lib's shared ones)."""
  return ml_collections.ConfigDict(dict(
      critic_dropout=0.0,  # the notebooks' critics: dropout after each conv (0: none)
      generator_final_norm=False,  # the notebook's WGAN-GP: BatchNorm before G's tanh
  ))


def wgan_gp_defaults() -> ml_collections.ConfigDict:
  """config.model's WGAN-GP keys: DCGAN's and where G's conv biases go."""
  c = dcgan_defaults()
  c.bias_before_norm = False  # the notebook's WGAN-GP G: conv biases before BN (zero gradient)
  return c


def check_dcgan(config, check) -> None:
  """Types and ranges of dcgan_defaults(); `check(cond, key, message)` raises naming the key."""
  config_checks.number(check, config, "model.critic_dropout", 0.0, 1.0, open_top=True)
  config_checks.boolean(check, config, "model.generator_final_norm")
  check(not (config.fused_critic and config.model.critic_dropout), "fused_critic",
        "dropout in the critic (model.critic_dropout) would draw one mask over real and "
        "fake from one key, not each pass's own: set fused_critic=False")


def check_wgan_gp(config, check) -> None:
  """Types of wgan_gp_defaults()."""
  check_dcgan(config, check)
  config_checks.boolean(check, config, "model.bias_before_norm")
