"""A PyTorch yardstick: the notebook's networks and training iteration in torch.

Machines differ, so gemgan's speed means something only as a ratio to a
well-known implementation measured in the same run. This module builds, for a
gemgan config, the same generator and critic in PyTorch (layer for layer, so
gemgan's parameters load into them: `load_gemgan_variables`) and the same
iteration: `n_critic` critic updates (each on its own real batch, fakes from
G in training mode without gradients, the config's loss, WGAN-GP's gradient
penalty through `autograd.grad(create_graph=True)`, Adam) then one generator
update (critic in training mode, its parameters frozen so torch computes no
critic weight gradients, as JAX's `grad` w.r.t. G's parameters does not).

Supported: the notebook's two families as the configs define them
(`dcgan` with BatchNorm in D after its first layer; `wgan_gp` with no critic
normalisation) and the ResNet family (gemgan/models/resnet.py, with or
without spectral norm: torch's `parametrizations.spectral_norm`, one power
iteration a training forward as flax's), with the generator's EMA when the
config has it; unconditional, no attention; DiffAugment (`diff_augment`, the
ops of gemgan/augment.py) but not ADA. The step variants of gemgan/steps.py
are mirrored, so that a ratio compares the same algorithm: `fused_critic`
(one critic pass over cat(real, fake), as BigGAN-PyTorch's G_D) and
`batched_fakes` (the n_critic fake batches from one G pass, BatchNorm
statistics per batch: `_GroupedBatchNorm`). torch is optional
(requirements-metrics.txt); it is imported only when this module is used.

Layouts: torch runs NCHW tensors; `memory_format="channels_last"` stores them
NHWC (oneDNN's preferred layout on CPU). 'SAME' convolutions have asymmetric
padding, which torch's Conv2d cannot express: the critic pads explicitly and
the generator's transposed convs compute one extra row/column and crop it.
"""
import collections
import functools

import numpy as np

from gemgan import augment
from gemgan import ema as ema_lib
from gemgan.models import layers as model_layers

# model name -> the critic norms the reference has
SUPPORTED = {"dcgan": ("batch",), "wgan_gp": ("none",), "resnet": ("none", "spectral")}


@functools.lru_cache(maxsize=None)
def _torch():
  import torch  # pylint: disable=g-import-not-at-top
  return torch


def _same_pads(n: int, k: int, s: int) -> tuple[int, int]:
  """lax/TF 'SAME' padding (low, high) of a strided conv."""
  out = -(-n // s)
  total = max((out - 1) * s + k - n, 0)
  return total // 2, total - total // 2


@functools.lru_cache(maxsize=None)
def _layers():
  """Small torch modules the Sequential networks need (built lazily: torch is optional)."""
  nn = _torch().nn

  class Crop(nn.Module):
    """Drops the last `n` rows and columns (a transposed 'SAME' conv's extra one)."""

    def __init__(self, n):
      super().__init__()
      self.n = n

    def forward(self, x):
      return x[:, :, :x.shape[2] - self.n, :x.shape[3] - self.n]

  class MeanPoolDense(nn.Module):
    """Global average pooling, then the dense score head."""

    def __init__(self, channels):
      super().__init__()
      self.dense = nn.Linear(channels, 1)

    def forward(self, x):
      return self.dense(x.mean(dim=(2, 3)))

  return Crop, MeanPoolDense


def _check_config(config):
  m = config.model
  if m.critic_norm not in SUPPORTED.get(m.name, ()):
    raise ValueError(f"torch reference: model {m.name!r} with critic_norm {m.critic_norm!r} "
                     f"is not one of {SUPPORTED}")
  extras = ("conditional", "critic_dropout", "generator_final_norm", "bias_before_norm",
            "attention_res")  # the last four: keys of some architectures only
  if (any(m.get(key) for key in extras) or config.augment.ada_ops
      or config.r1_weight or config.r2_weight or config.n_generator != 1 or config.share_fakes):
    raise ValueError("torch reference: only unconditional networks without dropout, attention, "
                     "ADA (--config.augment.ada_ops=''), R1/R2, extra G steps or share_fakes "
                     "are supported")
  if config.loss not in ("wasserstein", "nonsaturating", "hinge"):
    raise ValueError(f"torch reference: loss {config.loss!r} is not wasserstein, "
                     "nonsaturating or hinge")


@functools.lru_cache(maxsize=None)
def _resnet_blocks():
  """The ResNet family's residual blocks in torch, named as gemgan's Flax modules."""
  torch = _torch()
  nn, fn = torch.nn, torch.nn.functional

  def conv(cin, cout, k, spectral=False):
    layer = nn.Conv2d(cin, cout, k, padding=k // 2)  # 'SAME' for odd stride-1 kernels
    return nn.utils.parametrizations.spectral_norm(layer, eps=1e-12) if spectral else layer

  up = lambda v: fn.interpolate(v, scale_factor=2, mode="nearest")

  class GBlock(nn.Module):
    """BN-ReLU-nearest x2-conv3x3-BN-ReLU-conv3x3, 1x1 shortcut (resnet.GBlock)."""

    def __init__(self, cin, cout, upsample):
      super().__init__()
      self.upsample = upsample
      self.norm_0, self.conv_0 = _batch_norm(cin), conv(cin, cout, 3)
      self.norm_1, self.conv_1 = _batch_norm(cout), conv(cout, cout, 3)
      self.shortcut = conv(cin, cout, 1) if upsample or cin != cout else None

    def forward(self, x):
      resample = up if self.upsample else (lambda v: v)
      h = self.conv_0(resample(fn.relu(self.norm_0(x))))
      h = self.conv_1(fn.relu(self.norm_1(h)))
      shortcut = resample(x)
      return h + (self.shortcut(shortcut) if self.shortcut is not None else shortcut)

  class DBlock(nn.Module):
    """(ReLU)-conv3x3-ReLU-conv3x3-avgpool, 1x1 shortcut (resnet.DBlock)."""

    def __init__(self, cin, cout, spectral, downsample, preactivation):
      super().__init__()
      self.downsample, self.preactivation = downsample, preactivation
      self.conv_0, self.conv_1 = conv(cin, cout, 3, spectral), conv(cout, cout, 3, spectral)
      self.shortcut = conv(cin, cout, 1, spectral) if downsample or cin != cout else None

    def forward(self, x):
      down = (lambda v: fn.avg_pool2d(v, 2)) if self.downsample else (lambda v: v)
      h = fn.relu(x) if self.preactivation else x
      h = down(self.conv_1(fn.relu(self.conv_0(h))))
      if self.shortcut is None:
        return h + x
      return h + (down(self.shortcut(x)) if self.preactivation else self.shortcut(down(x)))

  class Generator(nn.Module):
    """resnet.Generator: dense to an SxS NHWC map, up-blocks, BN-ReLU-conv3x3-tanh."""

    def __init__(self, config):
      super().__init__()
      m = config.model
      self.start, n = model_layers.num_resamplings(config.data.image_size)
      channels = model_layers.stage_channels(m.width, n + 1)
      self.channels0 = channels[0]
      self.dense = nn.Linear(m.latent_dim, self.start**2 * channels[0])
      self.blocks = []
      for stage, (cin, cout) in enumerate(zip(channels, channels[1:])):
        for block in range(m.blocks_per_stage):
          name = f"stage_{stage}_block_{block}"
          self.add_module(name, GBlock(cin if block == 0 else cout, cout, block == 0))
          self.blocks.append(name)
      self.norm_out, self.conv_out = _batch_norm(channels[-1]), conv(channels[-1], 3, 3)

    def forward(self, z):
      x = self.dense(z).view(z.shape[0], self.start, self.start, self.channels0)
      x = x.permute(0, 3, 1, 2)  # an NHWC buffer: already channels_last
      for name in self.blocks:
        x = getattr(self, name)(x)
      return torch.tanh(self.conv_out(fn.relu(self.norm_out(x))))

  class Critic(nn.Module):
    """resnet.Critic: down-blocks, one more block, ReLU, sum pooling, dense."""

    def __init__(self, config):
      super().__init__()
      m, spectral = config.model, config.model.critic_norm == "spectral"
      _, n = model_layers.num_resamplings(config.data.image_size)
      channels = model_layers.stage_channels(m.width, n)[::-1]
      self.blocks, cin = [], 3
      for stage, cout in enumerate(channels + channels[-1:]):
        for block in range(m.blocks_per_stage):
          name = f"stage_{stage}_block_{block}"
          self.add_module(name, DBlock(cin, cout, spectral,
                                       block == m.blocks_per_stage - 1 and stage < n,
                                       stage + block > 0))
          self.blocks.append(name)
          cin = cout
      head = nn.Linear(cin, 1)
      self.head = nn.utils.parametrizations.spectral_norm(head, eps=1e-12) if spectral else head

    def forward(self, x):
      for name in self.blocks:
        x = getattr(self, name)(x)
      return self.head(fn.relu(x).sum(dim=(2, 3)))

  return Generator, Critic


def _batch_norm(channels):
  """Flax BatchNorm (momentum 0.8 keeps 80 % of the old statistics) in torch's convention."""
  return _grouped_batch_norm_class()(channels, eps=1e-5, momentum=0.2)


@functools.lru_cache(maxsize=None)
def _grouped_batch_norm_class():
  """`_GroupedBatchNorm` (built lazily: torch is optional)."""
  torch = _torch()

  class _GroupedBatchNorm(torch.nn.BatchNorm2d):
    """BatchNorm2d that, with `groups` = n > 1 (training), normalises each of n
    equal consecutive sub-batches by its own statistics: one pass over
    n_critic batches computing what n passes would (gemgan's vmapped G,
    `batched_fakes`). Running statistics are left alone there, as gemgan drops
    the state of the critic's G passes."""
    groups = 1

    def forward(self, x):
      if self.groups == 1 or not self.training:
        return super().forward(x)
      n, c, h, w = x.shape
      v = x.permute(0, 2, 3, 1).reshape(self.groups, -1, c)  # a view if channels_last
      var, mean = torch.var_mean(v, dim=1, keepdim=True, correction=0)
      scale = self.weight * torch.rsqrt(var + self.eps)
      out = torch.addcmul(self.bias - mean * scale, v, scale)  # one pass, as BatchNorm's
      return out.reshape(n, h, w, c).permute(0, 3, 1, 2)

  return _GroupedBatchNorm


def build_generator(config):
  """z [B, latent] -> images [B, 3, S, S]: gemgan's generator of `config` in torch."""
  if config.model.name == "resnet":
    return _resnet_blocks()[0](config)
  nn = _torch().nn
  crop_cls, _ = _layers()
  dcgan, w = config.model.name == "dcgan", config.model.width
  start = config.data.image_size // 16
  layers = [("unflatten", nn.Unflatten(1, (config.model.latent_dim, 1, 1))),
            ("conv_0", nn.ConvTranspose2d(config.model.latent_dim, 8 * w, start, bias=False)),
            ("bn_0", _batch_norm(8 * w)), ("relu_0", nn.ReLU())]
  channels = [8 * w, 4 * w, 2 * w, w, 3]
  for i, (cin, cout) in enumerate(zip(channels, channels[1:]), start=1):
    last = cout == 3
    if dcgan:  # k4 s2 p1, no bias
      layers.append((f"conv_{i}", nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)))
    else:  # k5 s2 'SAME': lax pads the dilated input (3, 2); torch's p=1 pads (3, 3)
      layers.append((f"conv_{i}", nn.ConvTranspose2d(cin, cout, 5, 2, 1, bias=last)))
      layers.append((f"crop_{i}", crop_cls(1)))
    if not last:
      layers += [(f"bn_{i}", _batch_norm(cout)),
                 (f"relu_{i}", nn.ReLU())]
  layers.append(("tanh", nn.Tanh()))
  return nn.Sequential(collections.OrderedDict(layers))


def build_critic(config):
  """images [B, 3, S, S] -> scores [B, 1]: gemgan's critic of `config` in torch."""
  if config.model.name == "resnet":
    return _resnet_blocks()[1](config)
  nn = _torch().nn
  _, head_cls = _layers()
  dcgan, w, size = config.model.name == "dcgan", config.model.width, config.data.image_size
  layers, cin = [], 3
  for i, cout in enumerate([w, 2 * w, 4 * w, 8 * w]):
    if dcgan:
      layers.append((f"conv_{i}", nn.Conv2d(cin, cout, 4, 2, 1, bias=False)))
      if i > 0:
        layers.append((f"norm_{i}", _batch_norm(cout)))
    else:
      lo, hi = _same_pads(size >> i, 5, 2)
      layers += [(f"pad_{i}", nn.ZeroPad2d((lo, hi, lo, hi))),
                 (f"conv_{i}", nn.Conv2d(cin, cout, 5, 2, 0))]
    layers.append((f"lrelu_{i}", nn.LeakyReLU(0.2)))
    cin = cout
  if dcgan:
    layers += [("head", nn.Conv2d(cin, 1, size // 16, bias=False)), ("flatten", nn.Flatten())]
  else:
    layers.append(("head", head_cls(cin)))
  return nn.Sequential(collections.OrderedDict(layers))


def load_gemgan_variables(module, params, state=None):
  """Copies a gemgan (Flax) parameter tree, and BatchNorm statistics and
  spectral norm's power-iteration vectors from `state` (`{"batch_stats": ...}`),
  into the torch network of the same config."""
  with _torch().no_grad():
    _load_tree(module, params, (state or {}).get("batch_stats", {}))
  return module


def _spectral_u(stats, name):
  """Flax's `u` of layer `name` among a module's MaybeSpectral_k/SpectralNorm_0 entries."""
  for wrapper in stats.values():
    for key, value in wrapper.get("SpectralNorm_0", {}).items():
      if key == f"{name}/kernel/u":
        return value[0]
  raise KeyError(f"no spectral norm state for {name!r}")


def _load_tree(module, params, stats):
  torch = _torch()
  t = lambda a: torch.from_numpy(np.array(a, np.float32))
  for name, layer in module.named_children():
    p = params.get(name)
    spectral = hasattr(layer, "parametrizations")
    weight = layer.parametrizations.weight.original if spectral else getattr(layer, "weight",
                                                                             None)
    if isinstance(layer, torch.nn.ConvTranspose2d):
      # torch's transposed kernel is lax.conv_transpose's, spatially flipped.
      weight.copy_(t(p["kernel"][::-1, ::-1]).permute(2, 3, 0, 1))
    elif isinstance(layer, torch.nn.Conv2d):
      weight.copy_(t(p["kernel"]).permute(3, 2, 0, 1))
    elif isinstance(layer, torch.nn.Linear):
      weight.copy_(t(p["kernel"]).T)
    elif isinstance(layer, torch.nn.BatchNorm2d):
      layer.weight.copy_(t(p["BatchNorm_0"]["scale"]))
      layer.bias.copy_(t(p["BatchNorm_0"]["bias"]))
      if name in stats:
        layer.running_mean.copy_(t(stats[name]["BatchNorm_0"]["mean"]))
        layer.running_var.copy_(t(stats[name]["BatchNorm_0"]["var"]))
      continue
    elif hasattr(layer, "dense"):  # MeanPoolDense: its dense is gemgan's "head"
      _load_tree(torch.nn.ModuleDict({name: layer.dense}), params, stats)
      continue
    else:
      if p is not None:
        _load_tree(layer, p, stats.get(name, {}))
      continue
    if layer.bias is not None:
      layer.bias.copy_(t(p["bias"]))
    if spectral:
      # flax iterates v = W'u then u = Wv; torch u = Wv then v = W'u: give torch
      # flax's u and the v flax derives from it (equal outputs once u has converged).
      sn = layer.parametrizations.weight[0]
      sn._u.copy_(t(_spectral_u(stats, name)))
      w = sn._reshape_weight_to_matrix(weight)
      sn._v.copy_(torch.nn.functional.normalize(w.T @ sn._u, dim=0, eps=sn.eps))


def _adam(params, lr, b1, b2):
  """optax.adam's update (eps 1e-8 outside the square root) with torch's
  fastest CPU implementation available."""
  torch = _torch()
  for kwargs in (dict(fused=True), dict(foreach=True), {}):
    try:
      return torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=1e-8, **kwargs)
    except (RuntimeError, TypeError, ValueError):
      continue
  raise RuntimeError("no torch Adam")


def compilable(config) -> bool:
  """Whether torch.compile can run the iteration. Not with a gradient penalty
  (no double backward) nor with spectral norm: the compiled backward of
  D(real) fails once D(fake)'s power iteration has updated u in place
  ("modified by an inplace operation", torch 2.13)."""
  return not config.gp_weight and config.model.critic_norm != "spectral"


class TorchIteration:
  """The gemgan config's training iteration in torch (see the module docstring).

  `bf16`: forward passes under `torch.autocast('cpu', bfloat16)` (parameters,
  optimizer and the penalty's norm in fp32, as gemgan's precision=bfloat16).
  `compile`: the two networks through `torch.compile` (where `compilable`).
  """

  def __init__(self, config, bf16=False, compile=False, memory_format="channels_last", seed=0):
    _check_config(config)
    torch = _torch()
    torch.manual_seed(seed)
    if compile and not compilable(config):
      raise ValueError("torch.compile does not support the gradient penalty's double backward "
                       "nor spectral norm's in-place power iteration")
    self.config, self.bf16 = config, bf16
    self.memory_format = getattr(torch, memory_format if memory_format == "channels_last"
                                 else "contiguous_format")
    self.g = build_generator(config).to(memory_format=self.memory_format)
    self.d = build_critic(config).to(memory_format=self.memory_format)
    o = config.optimizer
    self.g_opt = _adam(self.g.parameters(), o.g_lr, o.b1, o.b2)
    self.d_opt = _adam(self.d.parameters(), o.d_lr, o.b1, o.b2)
    self.g_fn = torch.compile(self.g) if compile else self.g
    self.d_fn = torch.compile(self.d) if compile else self.d
    self._gen = torch.Generator().manual_seed(seed)
    # The generator's EMA at the config's half-life (no ramp-up: the same work a step).
    self.ema = [p.detach().clone() for p in self.g.parameters()] if config.ema.enabled else None
    self.ema_weight = 1 - float(ema_lib.ema_decay(config.ema.halflife_kimg, config.batch_size,
                                                  images_seen=0.0, rampup=0.0))
    self.ops = augment.parse_policy(config.augment.policy)

  def _autocast(self):
    return _torch().autocast("cpu", dtype=_torch().bfloat16, enabled=self.bf16)

  def prepare(self, images):
    """NHWC numpy/JAX images in [-1, 1] -> this iteration's torch layout."""
    x = _torch().from_numpy(np.asarray(images, np.float32)).permute(0, 3, 1, 2)
    return x.contiguous(memory_format=self.memory_format)

  def augment(self, x):
    """DiffAugment of the config's policy (identity without one), in this layout."""
    if not self.ops:
      return x
    return diff_augment(x, self.ops, self._gen).contiguous(memory_format=self.memory_format)

  def fakes(self, zs):
    """G(z) for each latent batch of `zs`, training mode, no gradients: a pass
    each, or with `batched_fakes` one pass over all of them whose BatchNorm
    normalises each batch by its own statistics (as gemgan's vmapped G)."""
    torch = _torch()
    layout = self.memory_format
    with torch.no_grad(), self._autocast():
      if not self.config.batched_fakes:
        return [self.g_fn(z).float().contiguous(memory_format=layout) for z in zs]
      norms = [m for m in self.g.modules() if isinstance(m, _grouped_batch_norm_class())]
      for m in norms:
        m.groups = len(zs)
      try:
        out = self.g_fn(torch.cat(zs)).float().contiguous(memory_format=layout)
      finally:
        for m in norms:
          m.groups = 1
    return list(out.split(zs[0].shape[0]))

  def critic_scores(self, real, fake):
    """D(real), D(fake) of the augmented images: two passes, or with
    `fused_critic` one over their concatenation (BigGAN-PyTorch's G_D)."""
    torch = _torch()
    real, fake = self.augment(real), self.augment(fake)
    with self._autocast():
      if not self.config.fused_critic:
        return self.d_fn(real).float()[:, 0], self.d_fn(fake).float()[:, 0]
      both = torch.cat([real, fake]).contiguous(memory_format=self.memory_format)
      return self.d_fn(both).float()[:, 0].split(real.shape[0])

  def critic_loss(self, real, z, alpha, fake=None):
    """The critic's objective (loss + gp_weight * penalty), its parts, for one batch;
    the fakes G(z) unless given."""
    torch, c = _torch(), self.config
    fake = self.fakes([z])[0] if fake is None else fake
    real_out, fake_out = self.critic_scores(real, fake)
    if c.loss == "nonsaturating":
      loss = torch.nn.functional.softplus(-real_out).mean() + \
          torch.nn.functional.softplus(fake_out).mean()
    elif c.loss == "hinge":
      loss = torch.relu(1 - real_out).mean() + torch.relu(1 + fake_out).mean()
    else:
      loss = fake_out.mean() - real_out.mean()
    gp = torch.zeros(())
    if c.gp_weight:
      a = alpha.reshape(-1, 1, 1, 1)
      x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
      with self._autocast():
        out = self.d_fn(self.augment(x_hat)).float()
      grads, = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
      sq = grads.float().reshape(grads.shape[0], -1).square().sum(1)
      gp = ((sq.clamp_min(1e-12).sqrt() - 1) ** 2).mean()
      loss = loss + c.gp_weight * gp
    return loss, gp

  def generator_loss(self, z):
    """The generator's objective; the critic's parameters take no gradients."""
    torch = _torch()
    self.d.requires_grad_(False)
    try:
      with self._autocast():
        fake = self.g_fn(z).contiguous(memory_format=self.memory_format)
        out = self.d_fn(self.augment(fake)).float()[:, 0]
    finally:
      self.d.requires_grad_(True)
    if self.config.loss == "nonsaturating":
      return torch.nn.functional.softplus(-out).mean()
    return -out.mean()

  def _latent(self, batch):
    return _torch().randn(batch, self.config.model.latent_dim, generator=self._gen)

  def step(self, reals):
    """One iteration on `reals`: n_critic prepared batches [B, 3, H, W]."""
    torch = _torch()
    b = reals[0].shape[0]
    fakes = [None] * len(reals)
    if self.config.batched_fakes:
      fakes = self.fakes([self._latent(b) for _ in reals])
    for real, fake in zip(reals, fakes):
      z = self._latent(b) if fake is None else None
      loss, _ = self.critic_loss(real, z, torch.rand(b, generator=self._gen), fake=fake)
      self.d_opt.zero_grad(set_to_none=True)
      loss.backward()
      self.d_opt.step()
    g_loss = self.generator_loss(self._latent(b))
    self.g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    self.g_opt.step()
    if self.ema is not None:
      with torch.no_grad():
        torch._foreach_lerp_(self.ema, list(self.g.parameters()), self.ema_weight)  # pylint: disable=protected-access
    return float(g_loss.detach())


def diff_augment(x, ops, generator):
  """gemgan.augment.diff_augment's ops (DiffAugment, Zhao et al. 2020) on NCHW
  images in torch, per sample, at strength 1, drawing from `generator`."""
  for op in ops:
    x = _AUGMENT_OPS[op](x, generator)
  return x


def _uniform(x, generator, low, high):
  """U(low, high) per sample, [B, 1, 1, 1] in x's dtype."""
  u = _torch().rand(x.shape[0], 1, 1, 1, generator=generator)
  return (u * (high - low) + low).to(x.dtype)


def _color(x, generator):
  """Brightness, saturation and contrast, as gemgan.augment._color."""
  x = x + _uniform(x, generator, -0.5, 0.5)
  x = x + _uniform(x, generator, -1.0, 1.0) * (x - x.mean(dim=1, keepdim=True))
  return x + _uniform(x, generator, -0.5, 0.5) * (x - x.mean(dim=(1, 2, 3), keepdim=True))


def _translation(x, generator):
  """Integer shift in [-H/8, H/8] x [-W/8, W/8] per sample, zero fill: a gather
  of per-sample windows of the padded images (gemgan.augment._translation)."""
  torch = _torch()
  b, _, h, w = x.shape
  max_h, max_w = int(h * augment.TRANSLATION_RATIO), int(w * augment.TRANSLATION_RATIO)
  dh = torch.randint(-max_h, max_h + 1, (b, 1), generator=generator)
  dw = torch.randint(-max_w, max_w + 1, (b, 1), generator=generator)
  padded = torch.nn.functional.pad(x, (max_w, max_w, max_h, max_h))
  rows, cols = torch.arange(h) + max_h + dh, torch.arange(w) + max_w + dw  # [B, H], [B, W]
  index = torch.arange(b)[:, None, None]
  # Advanced indices around a slice: the result is [B, H, W, C].
  return padded[index, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _cutout(x, generator):
  """An (H/2) x (W/2) square at a random centre, clipped, set to zero (gemgan's)."""
  torch = _torch()
  b, _, h, w = x.shape
  size_h, size_w = int(h * augment.CUTOUT_RATIO), int(w * augment.CUTOUT_RATIO)
  centre_h = torch.randint(0, h + 1 - size_h % 2, (b, 1), generator=generator)
  centre_w = torch.randint(0, w + 1 - size_w % 2, (b, 1), generator=generator)
  rows, cols = torch.arange(h)[None], torch.arange(w)[None]
  in_h = (rows >= centre_h - size_h // 2) & (rows < centre_h - size_h // 2 + size_h)
  in_w = (cols >= centre_w - size_w // 2) & (cols < centre_w - size_w // 2 + size_w)
  keep = ~(in_h[:, :, None] & in_w[:, None, :])
  return x * keep[:, None].to(x.dtype)


_AUGMENT_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


def matmul_peak_flops(n: int = 4096, dtype: str = "float32", repeats: int = 3) -> float:
  """torch's FLOP/s on an n x n matmul (best of `repeats`)."""
  import time  # pylint: disable=g-import-not-at-top
  torch = _torch()
  a = torch.randn(n, n).to(getattr(torch, dtype))
  a @ a
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    a @ a
    best = min(best, time.perf_counter() - t)
  return 2 * n**3 / best
