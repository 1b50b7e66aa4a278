"""SNGAN/BigGAN-style ResNet GAN: hinge loss, spectral-norm D, EMA, DiffAugment.

The small-data recipe of DiffAugment-BigGAN (Zhao et al. 2020: CIFAR-10 at
10 % data, FID 39.8 -> 22.4 with DiffAugment) and StudioGAN, on the ResNet
family of gemgan/models/resnet.py. Adam (0, 0.999) at 2e-4 for both nets and
2 critic steps per G step, as SNGAN's CIFAR setting (Miyato et al. 2018).

Presets (`--config=configs/resnet.py:<preset>`, combine with commas):
  (none)       unconditional, real gems at 96 px, width 64
  conditional  class-conditional: conditional BatchNorm in G, projection D
  ada          ADA (adaptive p towards r_t = 0.6) instead of DiffAugment
  lowpass      [1,2,1] low-pass resampling instead of nearest-up / average-pool
  attention    self-attention at 32 px (64 px and up) or 16 px (32 px)
  cpu32        32 px, width 32: the campaign's size on a 2-core CPU
  laptop       real gems, 32 px, width 16, batch 16, 4 critic steps, 1,000 kimg: 55 min
  laptop64     laptop's networks grown from 32 to 64 px (gemgan.growing), 550 kimg: 58 min
  quick        synthetic gems at 32 px, CPU-sized
"""
from gemgan import ada
from gemgan import config_lib


def get_config(preset: str = ""):
  c = config_lib.base_config("resnet")
  config_lib.hinge_sn_recipe(c)

  presets = ("conditional", "ada", "lowpass", "attention", "cpu32", "laptop", "laptop64",
             "quick")
  for part in config_lib.split_presets(preset, presets, __file__):
    if part == "conditional":
      c.model.conditional = True
    elif part == "ada":
      c.augment.policy = ""
      c.augment.ada_ops = ",".join(ada.OPS)
      c.augment.ada_target = 0.6
    elif part == "lowpass":
      c.model.resample = "lowpass"
    elif part == "attention":
      c.model.attention_res = 16 if c.data.image_size <= 32 else 32
    elif part == "cpu32":
      c.data.image_size = 32
      c.model.width = 32
    elif part in ("laptop", "laptop64"):
      _laptop(c)
      if part == "laptop64":
        _laptop64(c)
    elif part == "quick":
      config_lib.quick_preset(c)
      c.num_train_steps = 800
      c.ema.halflife_kimg = 1.0
  return c


def _laptop(c):
  """Real gems, 32 px, width 16, batch 16, 4 critic steps, 1,000 kimg: 55 min on 2 cores."""
  # Why each value, with the runs that chose it: experiments/README.md, "The
  # laptop preset in full". Batch 16 gives 4x the G steps of batch 64 at the
  # same speed; 4 critic steps per G step (DiffAugment-BigGAN's CIFAR
  # setting) keep the SN critic off chance; width 16 buys 4x the kimg of 32;
  # DiffAugment's translation, not ADA (its p never left 0 here), keeps plaid
  # away. A checkpoint every 100 kimg, all kept, for FID vs kimg.
  c.data.image_size = 32
  c.model.width = 16
  c.batch_size = 16
  c.n_critic = 4
  c.num_train_kimg = 1000.0
  c.schedule.lr_end = 2e-5
  c.checkpoint_every_steps = 1562
  c.checkpoint_every_minutes = 0.0
  c.max_to_keep = 11
  c.sample_every_steps = 1562


def _laptop64(c):
  """`laptop`'s networks grown to 64 px: 300 kimg at 32 px, then a 64 px stage, 550 kimg."""
  # G: `laptop`'s 32 px generator (width 8 at 64 px keeps 16 channels at 32) plus
  # an 8-channel 64 px stage; the critic: `laptop`'s 32 px critic on 2x2-folded
  # pixels. Trained at 32 px first (gemgan.growing), the 64 px stage added from
  # zero as a residual on the 32 px image, upsampled bilinearly, so that the
  # run fits an hour on 2 cores (the runs behind each value: experiments/README.md).
  c.data.image_size = 64
  c.model.width = 8
  c.model.critic_width = 16
  c.model.critic_stem = "space_to_depth"
  c.fused_critic = True  # one critic pass over real and fake: 1.19x here
  c.grow.size = 32
  c.grow.kimg = 300.0
  c.grow.fade_kimg = 60.0
  c.grow.upsample = "bilinear"
  c.num_train_kimg = 550.0
