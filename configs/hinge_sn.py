"""Small-data recipe: hinge loss, spectral-norm critic, EMA, DiffAugment.

The combination that BigGAN/SNGAN-style codebases (StudioGAN, DiffAugment)
use on few thousand-image sets. The critic is the WGAN-GP family's
(5x5 convs, pooled dense head) with spectral normalisation instead of a
gradient penalty.

Presets (`--config=configs/hinge_sn.py:<preset>`):
  (none)       unconditional, real gems at 96 px
  conditional  class-conditional: conditional BatchNorm in G, projection D
  recommended  the same as conditional: the winner of experiments/compare.py
  r1           spectral norm off, lazy R1 penalty (gamma 1, every 4th step)
  quick        synthetic gems at 32 px, CPU-sized
"""
from gemgan import config_lib


def get_config(preset: str = ""):
  c = config_lib.base_config("wgan_gp")
  config_lib.hinge_sn_recipe(c)

  presets = ("conditional", "recommended", "r1", "quick")
  for part in config_lib.split_presets(preset, presets, __file__):
    if part in ("conditional", "recommended"):
      c.model.conditional = True
    elif part == "r1":
      c.model.critic_norm = "none"
      c.r1_weight = 1.0
      c.r1_every = 4
    elif part == "quick":
      config_lib.quick_preset(c)
      c.num_train_steps = 800
      c.log_every_steps = 50
      c.sample_every_steps = 200
      c.checkpoint_every_steps = 200
      c.ema.halflife_kimg = 1.0
  return c
