"""Generators and critics (Flax linen, NHWC), one module per architecture.

`config.model.name` picks an entry of `ARCHITECTURES`. Each entry's module
builds the (generator, critic) pair from the config, the number of classes (0:
unconditional) and the convolution classes, which are resolved here once
(`layers.resolve_convs`), never inside a module; it also owns the config.model
keys only it reads: their defaults (merged in by config_lib.base_config(name))
and their checks (run by config_lib.validate), next to the code that reads them.
A new architecture is one module with `build`, `config_defaults` and
`check_config` and one line below.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from gemgan.models import conv_stack
from gemgan.models import fastgan
from gemgan.models import layers
from gemgan.models import r3gan
from gemgan.models import resnet
from gemgan.models.layers import class_embedding  # re-exported for sampling


class Architecture(NamedTuple):
  build: Callable  # (config, num_classes, convs) -> (generator, critic)
  config_defaults: Callable  # () -> ConfigDict: config.model's own keys at their defaults
  check_config: Callable  # (config, check): check(cond, key, message) raises naming the key


ARCHITECTURES = {
    "dcgan": Architecture(conv_stack.build_dcgan, conv_stack.dcgan_defaults,
                          conv_stack.check_dcgan),
    "wgan_gp": Architecture(conv_stack.build_wgan_gp, conv_stack.wgan_gp_defaults,
                            conv_stack.check_wgan_gp),
    "resnet": Architecture(resnet.build, resnet.config_defaults, resnet.check_config),
    "r3gan": Architecture(r3gan.build, r3gan.config_defaults, r3gan.check_config),
    "fastgan": Architecture(fastgan.build, fastgan.config_defaults, fastgan.check_config),
}


def build_models(config: ml_collections.ConfigDict, num_classes: int = 0):
  """(generator, critic) modules for a config; `num_classes` if conditional."""
  dtype = jnp.bfloat16 if config.precision == "bfloat16" else jnp.float32
  convs = layers.resolve_convs(config.model.conv_impl, dtype)
  n = num_classes if config.model.conditional else 0
  return ARCHITECTURES[config.model.name].build(config, n, convs)


def count_params(params) -> int:
  """Number of scalars in a parameter tree."""
  return sum(x.size for x in jax.tree_util.tree_leaves(params))


def init_variables(module, rng, inputs, labels=None):
  """Initialises `module` on `inputs`; returns its variables dict."""
  p_rng, d_rng = jax.random.split(rng)
  return module.init({"params": p_rng, "dropout": d_rng}, inputs, labels, train=False)


def generator_apply(generator):
  """jit(params, state, z, labels) -> images: the eval-mode generator every tool samples with."""
  return jax.jit(lambda params, state, z, labels: generator.apply(
      {"params": params, **state}, z, labels, train=False))
