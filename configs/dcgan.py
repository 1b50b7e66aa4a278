"""DCGAN on gem photos (Radford et al. 2015), the notebook's architecture.

Presets (`--config=configs/dcgan.py:<preset>`, combine with commas):
  (none)  real gems at 96 px, the notebook's networks (G 4,600,704 and D
          2,775,808 parameters), non-saturating BCE on logits, Adam 2e-4
          (0.5, 0.999), batch 64.
  seed    the notebook's settings: batch 128, no flips.
  quick   synthetic gems (no download), small model: trains on 2 CPU cores
          in under 5 minutes.
Later presets override earlier ones: `seed,quick` is quick without flips.
"""
from gemgan import config_lib


def get_config(preset: str = ""):
  c = config_lib.base_config("dcgan")
  c.model.critic_norm = "batch"
  c.loss = "nonsaturating"
  c.gp_weight = 0.0
  c.n_critic = 1
  c.optimizer.update(g_lr=2e-4, d_lr=2e-4, b1=0.5, b2=0.999)

  for part in config_lib.split_presets(preset, ("seed", "quick"), __file__):
    if part == "seed":
      c.batch_size = 128
      c.data.random_flip = False
    elif part == "quick":
      config_lib.quick_preset(c)
      c.num_train_steps = 1500
  return c
