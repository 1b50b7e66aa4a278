"""Generators and critics (Flax linen, NHWC), one module per architecture.

`config.model.name` picks an entry of `ARCHITECTURES`; each entry builds the
(generator, critic) pair from the config, the number of classes (0:
unconditional) and the convolution classes, which are resolved here once
(`layers.resolve_convs`), never inside a module. A new architecture is one
module with a `build(config, num_classes, convs)` and one line below.
"""
import jax
import jax.numpy as jnp
import ml_collections

from gemgan.models import conv_stack
from gemgan.models import fastgan
from gemgan.models import layers
from gemgan.models import r3gan
from gemgan.models import resnet
from gemgan.models.layers import class_embedding  # re-exported for sampling

ARCHITECTURES = {
    "dcgan": conv_stack.build_dcgan,
    "wgan_gp": conv_stack.build_wgan_gp,
    "resnet": resnet.build,
    "r3gan": r3gan.build,
    "fastgan": fastgan.build,
}
# Architectures with keys of their own: name -> check(config, check_fn), run by
# config_lib.validate with its key-naming `check`.
CONFIG_CHECKS = {"fastgan": fastgan.check_config}


def build_models(config: ml_collections.ConfigDict, num_classes: int = 0):
  """(generator, critic) modules for a config; `num_classes` if conditional."""
  dtype = jnp.bfloat16 if config.precision == "bfloat16" else jnp.float32
  convs = layers.resolve_convs(config.model.conv_impl, dtype)
  n = num_classes if config.model.conditional else 0
  return ARCHITECTURES[config.model.name](config, n, convs)


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
