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
normalisation), unconditional, no augmentation, no EMA. torch is optional
(requirements-metrics.txt); it is imported only when this module is used.

Layouts: torch runs NCHW tensors; `memory_format="channels_last"` stores them
NHWC (oneDNN's preferred layout on CPU). 'SAME' convolutions have asymmetric
padding, which torch's Conv2d cannot express: the critic pads explicitly and
the generator's transposed convs compute one extra row/column and crop it.
"""
import collections
import functools

import numpy as np

SUPPORTED = {"dcgan": "batch", "wgan_gp": "none"}  # model name -> critic norm


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
  if SUPPORTED.get(m.name) != m.critic_norm:
    raise ValueError(f"torch reference: model {m.name!r} with critic_norm {m.critic_norm!r} "
                     f"is not one of {SUPPORTED}")
  if (m.conditional or m.critic_dropout or m.generator_final_norm or m.bias_before_norm
      or config.augment.policy or config.r1_weight or config.n_generator != 1):
    raise ValueError("torch reference: only the notebook's unconditional networks without "
                     "dropout, augmentation, R1 or extra G steps are supported")


def build_generator(config):
  """z [B, latent] -> images [B, 3, S, S]: gemgan.models.conv_stack.Generator in torch."""
  nn = _torch().nn
  crop_cls, _ = _layers()
  dcgan, w = config.model.name == "dcgan", config.model.width
  start = config.data.image_size // 16
  layers = [("unflatten", nn.Unflatten(1, (config.model.latent_dim, 1, 1))),
            ("conv_0", nn.ConvTranspose2d(config.model.latent_dim, 8 * w, start, bias=False)),
            ("bn_0", nn.BatchNorm2d(8 * w, eps=1e-5, momentum=0.2)), ("relu_0", nn.ReLU())]
  channels = [8 * w, 4 * w, 2 * w, w, 3]
  for i, (cin, cout) in enumerate(zip(channels, channels[1:]), start=1):
    last = cout == 3
    if dcgan:  # k4 s2 p1, no bias
      layers.append((f"conv_{i}", nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)))
    else:  # k5 s2 'SAME': lax pads the dilated input (3, 2); torch's p=1 pads (3, 3)
      layers.append((f"conv_{i}", nn.ConvTranspose2d(cin, cout, 5, 2, 1, bias=last)))
      layers.append((f"crop_{i}", crop_cls(1)))
    if not last:
      layers += [(f"bn_{i}", nn.BatchNorm2d(cout, eps=1e-5, momentum=0.2)),
                 (f"relu_{i}", nn.ReLU())]
  layers.append(("tanh", nn.Tanh()))
  return nn.Sequential(collections.OrderedDict(layers))


def build_critic(config):
  """images [B, 3, S, S] -> scores [B, 1]: gemgan.models.conv_stack.Critic in torch."""
  nn = _torch().nn
  _, head_cls = _layers()
  dcgan, w, size = config.model.name == "dcgan", config.model.width, config.data.image_size
  layers, cin = [], 3
  for i, cout in enumerate([w, 2 * w, 4 * w, 8 * w]):
    if dcgan:
      layers.append((f"conv_{i}", nn.Conv2d(cin, cout, 4, 2, 1, bias=False)))
      if i > 0:
        layers.append((f"norm_{i}", nn.BatchNorm2d(cout, eps=1e-5, momentum=0.2)))
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
  """Copies a gemgan (Flax) parameter tree, and BatchNorm statistics from
  `state` (`{"batch_stats": ...}`), into the torch network of the same config."""
  torch = _torch()
  t = lambda a: torch.from_numpy(np.array(a, np.float32))
  stats = (state or {}).get("batch_stats", {})
  with torch.no_grad():
    for name, layer in module.named_children():
      p = params.get(name)
      if isinstance(layer, torch.nn.ConvTranspose2d):
        # torch's transposed kernel is lax.conv_transpose's, spatially flipped.
        layer.weight.copy_(t(p["kernel"][::-1, ::-1]).permute(2, 3, 0, 1))
      elif isinstance(layer, torch.nn.Conv2d):
        layer.weight.copy_(t(p["kernel"]).permute(3, 2, 0, 1))
      elif isinstance(layer, torch.nn.BatchNorm2d):
        layer.weight.copy_(t(p["BatchNorm_0"]["scale"]))
        layer.bias.copy_(t(p["BatchNorm_0"]["bias"]))
        if name in stats:
          layer.running_mean.copy_(t(stats[name]["BatchNorm_0"]["mean"]))
          layer.running_var.copy_(t(stats[name]["BatchNorm_0"]["var"]))
      elif hasattr(layer, "dense"):
        layer.dense.weight.copy_(t(p["kernel"]).T)
        layer.dense.bias.copy_(t(p["bias"]))
        continue
      else:
        continue
      if getattr(layer, "bias", None) is not None and not isinstance(layer,
                                                                      torch.nn.BatchNorm2d):
        layer.bias.copy_(t(p["bias"]))
  return module


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


class TorchIteration:
  """The gemgan config's training iteration in torch (see the module docstring).

  `bf16`: forward passes under `torch.autocast('cpu', bfloat16)` (parameters,
  optimizer and the penalty's norm in fp32, as gemgan's precision=bfloat16).
  `compile`: the two networks through `torch.compile` (not with a gradient
  penalty: torch.compile does not support double backward).
  """

  def __init__(self, config, bf16=False, compile=False, memory_format="channels_last", seed=0):
    _check_config(config)
    torch = _torch()
    torch.manual_seed(seed)
    if compile and config.gp_weight:
      raise ValueError("torch.compile does not support the gradient penalty's double backward")
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

  def _autocast(self):
    return _torch().autocast("cpu", dtype=_torch().bfloat16, enabled=self.bf16)

  def prepare(self, images):
    """NHWC numpy/JAX images in [-1, 1] -> this iteration's torch layout."""
    x = _torch().from_numpy(np.asarray(images, np.float32)).permute(0, 3, 1, 2)
    return x.contiguous(memory_format=self.memory_format)

  def critic_loss(self, real, z, alpha):
    """The critic's objective (loss + gp_weight * penalty), its parts, for one batch."""
    torch, c = _torch(), self.config
    with torch.no_grad(), self._autocast():
      fake = self.g_fn(z).float().contiguous(memory_format=self.memory_format)
    with self._autocast():
      real_out, fake_out = self.d_fn(real).float()[:, 0], self.d_fn(fake).float()[:, 0]
    if c.loss == "nonsaturating":
      loss = torch.nn.functional.softplus(-real_out).mean() + \
          torch.nn.functional.softplus(fake_out).mean()
    else:
      loss = fake_out.mean() - real_out.mean()
    gp = torch.zeros(())
    if c.gp_weight:
      a = alpha.reshape(-1, 1, 1, 1)
      x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
      with self._autocast():
        out = self.d_fn(x_hat).float()
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
        out = self.d_fn(self.g_fn(z).contiguous(memory_format=self.memory_format)).float()[:, 0]
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
    for real in reals:
      b = real.shape[0]
      loss, _ = self.critic_loss(real, self._latent(b), torch.rand(b, generator=self._gen))
      self.d_opt.zero_grad(set_to_none=True)
      loss.backward()
      self.d_opt.step()
    g_loss = self.generator_loss(self._latent(reals[0].shape[0]))
    self.g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    self.g_opt.step()
    return float(g_loss.detach())


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
