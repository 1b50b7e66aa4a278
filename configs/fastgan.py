"""FastGAN (Liu et al., ICLR 2021): SLE generator, self-supervised critic, DiffAugment.

gemgan/models/fastgan.py has the networks and what was taken from where.
Training values as the authors' code: hinge loss, spectral norm on the
critic's convs, Adam (0.5, 0.999) at 2e-4 for both networks, one critic step
per G step, DiffAugment "color,translation", an EMA of G (their 0.999 per
step at batch 8: half-life ~5.5 kimg), reconstruction weight 1.

Presets (`--config=configs/fastgan.py:<preset>`, combine with commas):
  (none)       unconditional, real gems at 96 px, width 64
  conditional  class-conditional: conditional BatchNorm in G, projection D
  lowpass      [1,2,1] low-pass resampling in both networks
  laptop64     real gems, 64 px, width 16, batch 16: the best 64 px hour on 2 cores
  cpu96        real gems, 96 px, width 16, batch 16: the notebook's size on a CPU
  quick        synthetic gems at 64 px, CPU-sized
"""
from gemgan import config_lib


def get_config(preset: str = ""):
  c = config_lib.base_config("fastgan")
  c.model.critic_norm = "spectral"
  c.model.bn_momentum = 0.9  # PyTorch's BatchNorm default (0.1 in its convention)
  c.loss = "hinge"
  c.gp_weight = 0.0
  c.n_critic = 1
  c.optimizer.update(g_lr=2e-4, d_lr=2e-4, b1=0.5, b2=0.999)
  c.ema.enabled = True
  c.ema.halflife_kimg = 5.0
  c.augment.policy = "color,translation"

  presets = ("conditional", "lowpass", "laptop64", "cpu96", "quick")
  for part in config_lib.split_presets(preset, presets, __file__):
    if part == "conditional":
      c.model.conditional = True
    elif part == "lowpass":
      c.model.resample = "lowpass"
    elif part in ("laptop64", "cpu96"):
      # laptop64: 100 kimg, FID 125.5 in 61.6 min on 2 Xeon cores shared with test
      # runs (experiments/results/campaign64); 80 kimg scored 137.1, 60 kimg 128.7.
      c.data.image_size = 64 if part == "laptop64" else 96
      c.model.width = 16
      c.batch_size = 16
      c.num_train_kimg = 100.0 if part == "laptop64" else 1000.0
      c.checkpoint_every_steps = 1250  # 20 kimg
      c.checkpoint_every_minutes = 10.0
      c.max_to_keep = 20
      c.sample_every_steps = 1250
      if part == "cpu96":
        c.share_fakes = True  # the authors' one G pass per iteration: +8-10 % img/s
    elif part == "quick":
      config_lib.quick_preset(c)
      c.data.image_size = 64
      c.model.width = 8
      c.batch_size = 16
      c.num_train_steps = 800
      c.ema.halflife_kimg = 1.0
  return c
