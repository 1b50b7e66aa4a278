"""FastGAN (Liu et al., ICLR 2021, "Towards Faster and Stabilized GAN Training for
High-fidelity Few-shot Image Synthesis", arXiv:2101.04775), at 64-256 px.

What is taken from where (paper Sec. 3 and Fig. 3-4; layer choices as in the
authors' odegeasslbc/FastGAN-pytorch `models.py`, read for structure only):

- G: z -> SxS map (a dense layer: the official 4x4 transposed conv from a
  1x1 input is the same map) -> BN -> GLU; per doubling an up-block: nearest
  x2 (or [1,2,1] low-pass, `model.resample`), conv3x3 to 2C, BN, GLU; every
  second block ("UpBlockComp") has a second conv3x3-BN-GLU. Then conv3x3 ->
  tanh. Channels per stage follow the official `nfc` table {4: 16, 8: 8,
  16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5} x width, counted from the first map
  (so 96 px, which starts at 6x6, gets the same widths as 64 px).
- Skip-layer excitation (SLE, paper Eq. 1): a map `sle_ratio` x smaller than
  a stage's gates it channel-wise: adaptive average pool to 4x4, conv4x4
  (valid) -> 1x1, Swish, conv1x1, sigmoid, multiply. The official 256 px G
  gates 64/128/256 from 4/8/16 (ratio 16); at 64-128 px we default to 8 so
  that two stages are gated.
- D: conv3x3 + LeakyReLU(0.2) at full resolution, then "DownBlockComp" per
  halving down to the last map (8x8, or 6x6 at 96 px): main path conv4x4 s2
  -BN-LReLU-conv3x3-BN-LReLU, shortcut avgpool-conv1x1-BN-LReLU, averaged.
  The map 8x larger gates each map with SLE, as the official D does. Head:
  conv1x1-BN-LReLU-conv4x4 (valid), the logit map averaged to one score per
  image (our losses take [B] scores). Spectral norm on every conv with
  `critic_norm = "spectral"` (the official code wraps every conv in it).
- Self-supervised D (paper Sec. 3.2): two small decoders (pool to LxL, up-
  blocks, conv3x3, tanh) reconstruct, from the last LxL map, the whole input
  at half resolution, and from a random quadrant of the 2Lx2L map that
  quadrant of the input (at its own resolution, half the image's). The
  official loss is LPIPS (VGG weights: not available offline here); we use
  L1, as several reproductions do. Only real images are reconstructed.

Left out: the official D's second branch on a 128 px copy of the input and
its decoder, and G's noise injection (lightweight-gan has neither), to keep
the CPU cost down. The official hinge draws its margin in [0.8, 1]; gemgan's
hinge uses 1.
"""
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gemgan import config_checks
from gemgan.models import layers

ModuleDef = Any
SIZES = (64, 96, 128, 256)
# The official nfc table, indexed by doublings from the first map.
_CHANNEL_MULTS = (8, 8, 4, 2, 1, 1, 0.5, 0.25)


def channels_at(width: int, doublings: int) -> int:
  """Channels of the map `doublings` stages above the first one (>= 8)."""
  return max(int(_CHANNEL_MULTS[doublings] * width), 8)


def glu(x):
  """Gated linear unit over channels: x[..., :C] * sigmoid(x[..., C:])."""
  a, b = jnp.split(x, 2, axis=-1)
  return a * jax.nn.sigmoid(b)


def adaptive_avg_pool(x, size: int):
  """PyTorch's AdaptiveAvgPool2d(size) on NHWC maps (bins floor(i n/s)..ceil((i+1) n/s))."""
  def matrix(n):
    m = np.zeros((size, n), np.float32)
    for i in range(size):
      lo, hi = (i * n) // size, -((-(i + 1) * n) // size)
      m[i, lo:hi] = 1.0 / (hi - lo)
    return jnp.asarray(m, x.dtype)
  return jnp.einsum("ih,bhwc,jw->bijc", matrix(x.shape[1]), x, matrix(x.shape[2]))


class Excitation(nn.Module):
  """Skip-layer excitation: channel gates for `target` computed from the low-res `source`."""
  conv: ModuleDef
  spectral: bool = False

  @nn.compact
  def __call__(self, source, target, *, train: bool = True):
    conv = lambda v, ch, k, name: layers.MaybeSpectral(
        self.conv(ch, (k, k), padding="VALID", name=name), self.spectral)(v, train=train)
    ch = target.shape[-1]
    gate = conv(adaptive_avg_pool(source, 4), ch, 4, "conv_0")
    gate = jax.nn.sigmoid(conv(nn.swish(gate), ch, 1, "conv_1"))
    return target * gate


class UpBlock(nn.Module):
  """x2 up, then `num_convs` x (conv3x3 to 2C, BN, GLU): FastGAN's UpBlock / UpBlockComp."""
  features: int
  conv: ModuleDef
  norm: ModuleDef
  upsample: Any
  num_convs: int = 1

  @nn.compact
  def __call__(self, x, labels, *, train: bool = True):
    x = self.upsample(x)
    for i in range(self.num_convs):
      x = self.conv(2 * self.features, (3, 3), name=f"conv_{i}")(x)
      x = glu(self.norm(name=f"norm_{i}")(x, labels, train=train))
    return x


def excitation_sources(sizes, ratio: int) -> dict:
  """{index of a gated map: index of its source}: sources `ratio` x smaller."""
  return {i: sizes.index(s // ratio) for i, s in enumerate(sizes) if s // ratio in sizes
          and s % ratio == 0}


class Generator(nn.Module):
  """z [B, latent] (+ labels) -> images [B, size, size, 3] in [-1, 1]."""
  image_size: int
  width: int
  conv: ModuleDef
  norm: ModuleDef
  upsample: Any
  sle_ratio: int = 8
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = True):
    start, n = layers.num_resamplings(self.image_size)
    ch0 = channels_at(self.width, 0)
    x = nn.Dense(start * start * 2 * ch0, dtype=self.dtype, name="dense")(z.astype(self.dtype))
    x = x.reshape(z.shape[0], start, start, 2 * ch0)
    maps = [glu(self.norm(name="norm_in")(x, labels, train=train))]
    gates = excitation_sources([start * 2**k for k in range(n + 1)], self.sle_ratio)
    for k in range(1, n + 1):
      x = UpBlock(channels_at(self.width, k), self.conv, self.norm, self.upsample,
                  num_convs=2 if k % 2 else 1, name=f"up_{k}")(maps[-1], labels, train=train)
      if k in gates:
        x = Excitation(self.conv, name=f"sle_{k}")(maps[gates[k]], x, train=train)
      maps.append(x)
    x = self.conv(3, (3, 3), name="conv_out")(maps[-1])
    return jnp.tanh(x.astype(jnp.float32))


class DownBlock(nn.Module):
  """FastGAN's DownBlockComp: (strided main path + pooled 1x1 shortcut) / 2."""
  features: int
  conv: ModuleDef
  spectral: bool
  norm: ModuleDef
  lowpass: bool = False

  @nn.compact
  def __call__(self, x, *, train: bool = True):
    conv = lambda v, k, name, **kw: layers.MaybeSpectral(
        self.conv(self.features, (k, k), name=name, **kw), self.spectral)(v, train=train)
    act = lambda v, name: nn.leaky_relu(self.norm(name=name)(v, train=train), 0.2)
    if self.lowpass:  # [1,2,1] blur, subsample, then conv (no aliasing stride)
      h = conv(layers.lowpass_down2(x), 3, "conv_0")
    else:  # the official conv4x4, stride 2, padding 1
      h = conv(x, 4, "conv_0", strides=(2, 2), padding=((1, 1), (1, 1)))
    h = act(conv(act(h, "norm_0"), 3, "conv_1"), "norm_1")
    shortcut = act(conv(layers.avg_pool2(x), 1, "shortcut"), "norm_2")
    return (h + shortcut) / 2


class Decoder(nn.Module):
  """Up-blocks from an LxL map to `out_size`, conv3x3, tanh: the self-supervision decoder.

  Channels at each size are the generator's (`start`: the first map's size).
  """
  width: int
  start: int
  out_size: int
  conv: ModuleDef
  norm: ModuleDef
  upsample: Any

  @nn.compact
  def __call__(self, x, *, train: bool = True):
    while x.shape[1] < self.out_size:
      k = int(np.log2(2 * x.shape[1] // self.start))
      x = UpBlock(channels_at(self.width, k), self.conv, self.norm, self.upsample,
                  name=f"up_{x.shape[1] * 2}")(x, None, train=train)
    return jnp.tanh(self.conv(3, (3, 3), name="conv_out")(x).astype(jnp.float32))


class Critic(nn.Module):
  """images [B, H, W, 3] (+ labels) -> scores [B]; with `reconstruct`, (scores, L1 loss).

  `reconstruct` also draws each sample's quadrant from the 'dropout' RNG
  stream (the one the training step already passes to critics).
  """
  width: int
  conv: ModuleDef
  norm: ModuleDef
  upsample: Any
  spectral: bool = False
  lowpass: bool = False
  num_classes: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images, labels=None, *, train: bool = True, reconstruct: bool = False):
    start, n = layers.num_resamplings(images.shape[1])
    conv = lambda v, ch, k, name, **kw: layers.MaybeSpectral(
        self.conv(ch, (k, k), name=name, **kw), self.spectral)(v, train=train)
    x = nn.leaky_relu(conv(images.astype(self.dtype), channels_at(self.width, n + 1), 3,
                           "conv_in"), 0.2)
    maps = [x]  # maps at start * 2**n, ..., start * 2
    for k in range(n - 1, 0, -1):
      x = DownBlock(channels_at(self.width, k + 1), self.conv, self.spectral, self.norm,
                    self.lowpass, name=f"down_{k}")(x, train=train)
      source = n - k - 3  # the map 8x larger
      if source >= 0:
        x = Excitation(self.conv, self.spectral, name=f"sle_{k}")(maps[source], x, train=train)
      maps.append(x)
    h = conv(x, channels_at(self.width, 0) // 2, 1, "head_0")
    h = nn.leaky_relu(self.norm(name="head_norm")(h, train=train), 0.2)
    scores = jnp.mean(conv(h, 1, 4, "head_1", padding="VALID"), axis=(1, 2, 3))
    if self.num_classes:
      scores = scores + layers.ProjectionHead(self.num_classes)(x.sum(axis=(1, 2)), labels)
    scores = scores.astype(jnp.float32)
    if not (reconstruct or self.is_initializing()):  # init creates the decoders too
      return scores
    decoder = functools.partial(Decoder, self.width, start, images.shape[1] // 2, self.conv,
                                self.norm, self.upsample)
    part_index = jax.random.randint(self.make_rng("dropout"), (images.shape[0],), 0, 4)
    whole = decoder(name="decoder_whole")(x, train=train)
    part = decoder(name="decoder_part")(quadrant(maps[-2], part_index), train=train)
    loss = reconstruction_loss(whole, part, images.astype(jnp.float32), part_index)
    return (scores, loss) if reconstruct else scores


def quadrant(x, index):
  """Per-sample quadrant `index` [B] in 0..3 (row-major) of NHWC maps `x`."""
  h, w = x.shape[1] // 2, x.shape[2] // 2
  quads = jnp.stack([x[:, :h, :w], x[:, :h, w:], x[:, h:, :w], x[:, h:, w:]])
  return jnp.take_along_axis(quads, index[None, :, None, None, None], axis=0)[0]


def reconstruction_loss(whole, part, images, part_index):
  """L1 of the two decoders: the whole image at half size, and one quadrant.

  mean|whole - avgpool2(images)| + mean|part - quadrant(images)|.
  """
  target_whole = layers.avg_pool2(images)
  target_part = quadrant(images, part_index)
  return jnp.mean(jnp.abs(whole - target_whole)) + jnp.mean(jnp.abs(part - target_part))


def build(config, num_classes: int, convs: layers.Convs):
  """The FastGAN pair for `config.model` (width, sle_ratio, resample, critic_norm)."""
  m, dt = config.model, convs.dtype
  conv = functools.partial(convs.conv, padding="SAME", dtype=dt)
  lowpass = m.resample == "lowpass"
  upsample = layers.lowpass_up2 if lowpass else layers.upsample_nearest
  g_norm = layers.generator_norm(num_classes, m.bn_momentum, dt)
  d_norm = functools.partial(layers.BatchNorm, momentum=m.bn_momentum, dtype=dt)
  generator = Generator(config.data.image_size, m.width, conv, g_norm, upsample, m.sle_ratio, dt)
  critic = Critic(m.width, conv, d_norm, upsample, m.critic_norm == "spectral", lowpass,
                  num_classes, dt)
  return generator, critic


def config_defaults() -> ml_collections.ConfigDict:
  """config.model's FastGAN keys (on top of config_lib's shared ones)."""
  return ml_collections.ConfigDict(dict(
      sle_ratio=8,  # gate each map from the one 8x smaller (see the module's docstring)
      recon_weight=1.0,  # the critic's L1 reconstruction loss, the authors' weight (0: off)
      resample="nearest",  # or "lowpass": [1,2,1]-filtered up and down in both networks
  ))


def check_config(config, check) -> None:
  """FastGAN's keys and what it cannot train with; `check(cond, key, message)` names the key."""
  m = config.model
  config_checks.choice(check, config, "model.resample", layers.RESAMPLES)
  check(config.data.image_size in SIZES, "data.image_size",
        f"FastGAN makes {SIZES} px (a 4x4 or 6x6 start and an 8x8 / 12x12 last critic map), "
        f"not {config.data.image_size}")
  check(m.sle_ratio in (4, 8, 16), "model.sle_ratio", f"must be 4, 8 or 16, got {m.sle_ratio!r}")
  check(isinstance(m.recon_weight, (int, float)) and m.recon_weight >= 0, "model.recon_weight",
        f"must be a number >= 0, got {m.recon_weight!r}")
  check(m.critic_norm in ("spectral", "none"), "model.critic_norm",
        f"FastGAN's critic has BatchNorm inside; choose 'spectral' or 'none', not "
        f"{m.critic_norm!r}")
  check(config.r1_weight == 0 and config.r2_weight == 0 and config.gp_weight == 0, "r1_weight",
        "FastGAN's critic has batch statistics, so per-sample gradient penalties "
        "(gp_weight, r1_weight, r2_weight) are not exact: set them to 0")
  recon = (", and only its real pass reconstructs the images (model.recon_weight)"
           if m.recon_weight else "")
  check(not config.fused_critic, "fused_critic",
        f"FastGAN's critic has BatchNorm inside (one pass over real and fake would "
        f"normalise them together){recon}: set fused_critic=False")
