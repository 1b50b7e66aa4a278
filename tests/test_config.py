"""Every preset validates; bad values fail up front naming the key."""
import importlib
import re

import ml_collections
import pytest

from configs import dcgan, fastgan, hinge_sn, r3gan, resnet, wgan_gp
from gemgan import config_lib
from tests.conftest import REPO_ROOT

PRESETS = [(dcgan, p) for p in ("", "seed", "quick", "seed,quick")] + \
          [(wgan_gp, p) for p in ("", "seed", "quick", "ema_diffaug", "seed,quick",
                                  "quick,ema_diffaug")] + \
          [(hinge_sn, p) for p in ("", "conditional", "recommended", "r1", "quick", "conditional,quick")]


@pytest.mark.parametrize("module,preset", PRESETS)
def test_presets_validate(module, preset):
  config_lib.validate(module.get_config(preset))


@pytest.mark.parametrize("key,value,match", [
    ("model.name", "stylegan", "config.model.name: unknown model 'stylegan'"),
    ("data.image_size", 100, "config.data.image_size: 100 cannot be made"),
    ("n_critic", 0, "config.n_critic: must be >= 1"),
    ("loss", "wgan", "config.loss: unknown loss"),
    ("augment.policy", "color,zoom", "config.augment.policy: .*zoom"),
    ("model.critic_norm", "group", "config.model.critic_norm"),
    ("latent_dist", "laplace", "config.latent_dist"),
    ("data.name", "no_such_set", "config.data.name: unknown dataset .no_such_set."),
    ("model.conv_impl", "cudnn", "config.model.conv_impl: 'cudnn' is not one of"),
    ("ema.halflife_kimg", -1.0, "config.ema.halflife_kimg: must be a number > 0"),
    ("checkpoint_every_minutes", -5.0, "config.checkpoint_every_minutes: must be >= 0"),
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


@pytest.mark.parametrize("module,preset,key,value,match", [
    (r3gan, "", "model.group_width", 12, r"config.model.group_width: 12 must divide width \* "),
    (r3gan, "", "model.critic_norm", "spectral", "config.model.critic_norm: R3GAN is norm"),
    (resnet, "", "model.critic_norm", "batch", "config.model.critic_norm: the ResNet critic"),
    (resnet, "", "model.resample", "bilinear", "config.model.resample: 'bilinear' is not one"),
    (resnet, "", "model.critic_stem", "patchify", "config.model.critic_stem: 'patchify' is not"),
    (resnet, "", "model.critic_width", -8, r"config.model.critic_width: must be >= 0 \(0: model"),
    (resnet, "", "model.generator_min_channels", -1,
     r"config.model.generator_min_channels: must be >= 0 \(0: no floor\)"),
    (wgan_gp, "seed", "model.critic_dropout", 1.0, r"config.model.critic_dropout: .*\[0.0, 1.0\)"),
])
def test_architecture_rules_name_the_key(module, preset, key, value, match):
  c = module.get_config(preset)
  c.model[key.split(".")[1]] = value
  with pytest.raises(config_lib.ConfigError, match=match):
    config_lib.validate(c)


@pytest.mark.parametrize("module,preset,changes,match", [
    (dcgan, "", {}, "the critic's BatchNorm"),
    (wgan_gp, "", {"model.critic_dropout": 0.25}, "dropout in the critic"),
    (hinge_sn, "r1", {"r1_every": 1}, "R1 every critic update"),
    (r3gan, "", {}, "R1 every critic update"),
    (resnet, "laptop", {"r2_weight": 1.0}, "R2 is the input gradient of the fake pass"),
    (fastgan, "laptop64", {}, "BatchNorm inside .*only its real pass reconstructs"),
])
def test_fused_critic_is_refused_where_one_pass_is_another_function(module, preset, changes,
                                                                     match):
  c = module.get_config(preset)
  config_lib.validate(c)
  c.fused_critic = True
  for key, value in changes.items():
    *parents, leaf = key.split(".")
    node = c
    for p in parents:
      node = node[p]
    node[leaf] = value
  with pytest.raises(config_lib.ConfigError, match=rf"^config\.fused_critic: .*{match}"):
    config_lib.validate(c)


def test_step_variants_validate_where_they_keep_the_iteration():
  c = resnet.get_config("laptop")
  c.fused_critic = c.batched_fakes = True
  config_lib.validate(c)
  for module, preset in ((hinge_sn, "r1"), (wgan_gp, ""), (resnet, "")):  # lazy R1, WGAN-GP
    c = module.get_config(preset)
    c.fused_critic = True
    config_lib.validate(c)
  c = resnet.get_config("laptop")
  c.batched_fakes, c.n_critic = True, 1
  with pytest.raises(config_lib.ConfigError, match=r"^config\.batched_fakes: .*n_critic > 1"):
    config_lib.validate(c)


def test_a_key_the_architecture_reads_cannot_be_missing():
  c = wgan_gp.get_config()
  c.model.name = "resnet"  # without base_config("resnet")'s keys
  with pytest.raises(config_lib.ConfigError, match=r"config.model.attention_res: missing, and "
                     r"resnet reads it: start from config_lib.base_config\('resnet'\)"):
    config_lib.validate(c)


def test_batch_must_split_over_devices():
  c = wgan_gp.get_config()
  c.batch_size = 30
  config_lib.validate(c, num_devices=3)
  with pytest.raises(config_lib.ConfigError, match="not divisible by the 8 devices"):
    config_lib.validate(c, num_devices=8)


def preset_names(module) -> list[str]:
  """The presets a config file's docstring lists ('(none)' is the default, '')."""
  listing = module.__doc__.split("Presets", 1)[1]
  names = re.findall(r"^  (\(none\)|[a-z][a-z0-9_]*)\s", listing, re.M)
  return ["" if n == "(none)" else n for n in names]


CONFIG_MODULES = {path.stem: importlib.import_module(f"configs.{path.stem}")
                  for path in sorted((REPO_ROOT / "configs").glob("*.py"))}
ALL_PRESETS = [(name, preset) for name, module in CONFIG_MODULES.items()
               for preset in preset_names(module)]


def leaves(config, prefix=""):
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from leaves(value, f"{prefix}{key}.")
    else:
      yield prefix + key, value


@pytest.mark.parametrize("name", CONFIG_MODULES)
def test_unknown_preset_names_the_files_presets(name):
  with pytest.raises(ValueError, match=rf"unknown preset 'fast' for configs/{name}\.py") as e:
    CONFIG_MODULES[name].get_config("quick,fast")
  assert all(repr(p) in str(e.value) for p in preset_names(CONFIG_MODULES[name]) if p)


def test_every_config_file_lists_its_presets():
  assert {name for name, _ in ALL_PRESETS} == set(CONFIG_MODULES)
  assert ("wgan_gp", "ema_diffaug") in ALL_PRESETS and ("hinge_sn", "") in ALL_PRESETS


@pytest.mark.parametrize("name,preset", ALL_PRESETS)
def test_every_key_of_every_preset_is_validated(name, preset):
  module = CONFIG_MODULES[name]
  config_lib.validate(module.get_config(preset))
  for key, value in leaves(module.get_config(preset)):
    if isinstance(value, bool):
      bad_values = ["yes", 1]
    elif isinstance(value, (int, float)):
      bad_values = [-1, "1"]  # negative, and the wrong type
    elif value is None:  # an unset placeholder: a string is the wrong type
      bad_values = ["x"]
    else:
      bad_values = [7]
    for bad in bad_values:
      config = module.get_config(preset)
      *parents, leaf = key.split(".")
      node = config
      for part in parents:
        node = node[part]
      with node.ignore_type():
        node[leaf] = bad
      with pytest.raises(config_lib.ConfigError, match=rf"^config\.{re.escape(key)}: "):
        config_lib.validate(config)
