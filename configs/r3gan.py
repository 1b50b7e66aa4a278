"""R3GAN (Huang et al. 2024, "The GAN is dead; long live the GAN!", arXiv:2501.05441).

RpGAN loss + R1 + R2 on a normalisation-free ResNet (gemgan/models/r3gan.py),
no other tricks. Values and their sources:
- loss softplus(-(D(x) - D(G(z)))) for D, the mirror for G; R1 and R2 each
  with weight gamma / 2, every step, gradients w.r.t. the unaugmented images
  (paper Sec. 2-3; brownvc/R3GAN Trainer.py);
- n_critic 1, Adam beta1 0 (paper Sec. 4, "Config E");
- cosine schedules over training (brownvc/R3GAN's training loop, as noted in
  shared/NOTES.md): lr 2e-4 -> 5e-5, beta2 0.9 -> 0.99, gamma annealed 10x
  (CIFAR-10's 0.05 -> 0.005);
- residual blocks: expansion 2, 16 channels per group, 2 blocks per stage,
  LeakyReLU 0.2, init scaled by L^(-1/4) (Networks.py);
- EMA of G at StyleGAN2-ADA's 10 kimg half-life (R3GAN also anneals it; kept
  constant here).
Deviation for 4,400 photos: augmentation is ADA's adaptive p (target 0.6)
rather than R3GAN's scheduled p, so the amount follows the overfitting.

Durations: `--config.num_train_kimg=N`; the schedules span it (schedule.kimg 0).

Presets (`--config=configs/r3gan.py:<preset>`, combine with commas):
  (none)       real gems at 96 px, width 64
  conditional  class-conditional (embedding in G, projection in D)
  cpu32        32 px, width 32
  quick        synthetic gems at 32 px, CPU-sized
"""
from gemgan import ada
from gemgan import config_lib


def get_config(preset: str = ""):
  c = config_lib.base_config("r3gan")  # blocks, expansion, groups: gemgan/models/r3gan.py
  c.model.critic_norm = "none"
  c.loss = "rpgan"
  c.gp_weight = 0.0
  c.r1_weight = c.r2_weight = 0.05
  c.n_critic = 1
  c.optimizer.update(g_lr=2e-4, d_lr=2e-4, b1=0.0, b2=0.9)
  c.ema.enabled = True
  c.augment.ada_ops = ",".join(ada.OPS)
  c.augment.ada_target = 0.6
  c.schedule.update(lr_end=5e-5, b2_end=0.99, gamma_end=0.005)

  for part in config_lib.split_presets(preset, ("conditional", "cpu32", "quick"), __file__):
    if part == "cpu32":
      c.data.image_size = 32
      c.model.width = 32
    elif part == "quick":
      config_lib.quick_preset(c)
      c.num_train_kimg = 48.0
      c.ema.halflife_kimg = 1.0
    elif part == "conditional":
      c.model.conditional = True
  return c
