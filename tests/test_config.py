"""Every preset validates; bad values fail up front naming the key."""
import pytest

from configs import dcgan, hinge_sn, wgan_gp
from gemgan import config_lib

PRESETS = [(dcgan, p) for p in ("", "seed", "quick")] + \
          [(wgan_gp, p) for p in ("", "seed", "quick", "ema_diffaug")] + \
          [(hinge_sn, p) for p in ("", "conditional", "recommended", "r1", "quick", "conditional,quick")]


@pytest.mark.parametrize("module,preset", PRESETS)
def test_presets_validate(module, preset):
  config_lib.validate(module.get_config(preset))


@pytest.mark.parametrize("module", [dcgan, wgan_gp, hinge_sn])
def test_unknown_preset_is_an_error(module):
  with pytest.raises(ValueError, match="unknown preset"):
    module.get_config("fast")


@pytest.mark.parametrize("key,value,match", [
    ("model.name", "stylegan", "config.model.name: unknown model 'stylegan'"),
    ("data.image_size", 100, "config.data.image_size: 100 cannot be made"),
    ("n_critic", 0, "config.n_critic: must be >= 1"),
    ("loss", "wgan", "config.loss: unknown loss"),
    ("augment.policy", "color,zoom", "config.augment.policy: .*zoom"),
    ("model.critic_norm", "group", "config.model.critic_norm"),
    ("latent_dist", "laplace", "config.latent_dist"),
    ("data.name", "mnist", "config.data.name: unknown dataset"),
    ("model.conv_impl", "cudnn", "config.model.conv_impl: 'cudnn' is not one of"),
])
def test_bad_values_name_the_key(key, value, match):
  c = wgan_gp.get_config()
  *parents, leaf = key.split(".")
  node = c
  for p in parents:
    node = node[p]
  node[leaf] = value
  with pytest.raises(config_lib.ConfigError, match=match):
    config_lib.validate(c)


def test_batch_must_split_over_devices():
  c = wgan_gp.get_config()
  c.batch_size = 30
  config_lib.validate(c, num_devices=3)
  with pytest.raises(config_lib.ConfigError, match="not divisible by the 8 devices"):
    config_lib.validate(c, num_devices=8)
