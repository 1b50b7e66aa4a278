"""WGAN-GP on gem photos (Gulrajani et al. 2017).

Presets (`--config=configs/wgan_gp.py:<preset>`, combine with commas):
  (none)    real gems at 96 px; critic without normalisation (the gradient
            penalty is per sample, so no batch statistics in the critic);
            n_critic 5, Adam 1e-4 (0, 0.9), lambda 10, as the paper.
  seed      the original notebook as it was: BatchNorm and dropout 0.25 in
            the critic (flawed: the penalty then depends on the whole batch),
            BatchNorm before G's tanh, z ~ U(-1, 1), batch 10, one critic and
            two generator updates per iteration.
  quick     synthetic gems (no download), small model: trains on 2 CPU cores
            in under 5 minutes.
  ema_diffaug  WGAN-GP + EMA + DiffAugment (experiments/ found
            configs/hinge_sn.py:recommended best overall, so far at 32 px).
Later presets override earlier ones: `seed,quick` trains the notebook's
networks (BatchNorm and dropout in D, uniform z) at the quick size and batch.
"""
from gemgan import config_lib


def get_config(preset: str = ""):
  c = config_lib.base_config("wgan_gp")
  c.model.critic_norm = "none"
  c.loss = "wasserstein"
  c.gp_weight = 10.0
  c.n_critic = 5
  c.optimizer.update(g_lr=1e-4, d_lr=1e-4, b1=0.0, b2=0.9)

  for part in config_lib.split_presets(preset, ("seed", "quick", "ema_diffaug"), __file__):
    if part == "seed":
      c.model.critic_norm = "batch"
      c.model.critic_dropout = 0.25
      c.model.generator_final_norm = True
      c.model.bias_before_norm = True
      c.latent_dist = "uniform"
      c.batch_size = 10
      c.n_critic = 1
      c.n_generator = 2
      c.data.random_flip = False
    elif part == "quick":
      config_lib.quick_preset(c)
      c.n_critic = 2
      c.optimizer.update(g_lr=2e-4, d_lr=2e-4)
      c.num_train_steps = 1500
      c.ema.enabled = True
      c.ema.halflife_kimg = 1.0
    elif part == "ema_diffaug":
      c.ema.enabled = True
      c.augment.policy = "color,translation,cutout"
  return c
