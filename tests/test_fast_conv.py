"""FastConv / FastConvTranspose equal nn.Conv / nn.ConvTranspose: values, first
and second derivatives, parameter trees; penalty gradients use fast conv forms."""
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemgan import config_lib
from gemgan import models
from gemgan.models import conv_stack
from gemgan.ops import conv as fast

# (kwargs, input shape): every layer the models use, plus odd sizes.
CONV_CASES = [
    (dict(features=5, kernel_size=(4, 4), strides=(2, 2), padding=((1, 1), (1, 1))), (2, 16, 16, 3)),
    (dict(features=5, kernel_size=(4, 4), strides=(2, 2), padding=((1, 1), (1, 1))), (2, 9, 7, 3)),
    (dict(features=1, kernel_size=(6, 6), padding="VALID", use_bias=False), (2, 6, 6, 4)),
    (dict(features=1, kernel_size=(4, 4), padding="VALID"), (2, 4, 4, 4)),
    (dict(features=2, kernel_size=(8, 8), padding="VALID"), (2, 9, 8, 4)),
    (dict(features=4, kernel_size=(5, 5), strides=(2, 2), padding="SAME"), (2, 16, 16, 3)),
    (dict(features=4, kernel_size=(5, 5), strides=(2, 2), padding="SAME"), (2, 15, 11, 3)),
    (dict(features=3, kernel_size=(3, 3), padding="SAME"), (2, 7, 7, 2)),
    (dict(features=3, kernel_size=(3, 2), strides=(3, 2), padding=1), (3, 11, 8, 2)),
    (dict(features=3, kernel_size=(3, 3), strides=(2, 1), padding="CIRCULAR"), (2, 8, 6, 2)),
    (dict(features=3, kernel_size=(2, 2), strides=2, padding=[(0, 1), 2]), (2, 7, 6, 2)),
    (dict(features=3, kernel_size=(3, 3), padding="SAME"), (2, 1, 1, 4)),  # 1x1 input
    # Fewer pixels than kernel taps: the patches-matmul form (XLA would swap).
    (dict(features=4, kernel_size=(5, 5), strides=(2, 2), padding="SAME"), (2, 4, 3, 3)),
    (dict(features=2, kernel_size=(3, 3), padding=((2, 1), (0, 2))), (2, 2, 2, 3)),
    # Grouped (R3GAN's 3x3): a block-diagonal dense kernel.
    (dict(features=6, kernel_size=(3, 3), padding="SAME", feature_group_count=3,
          use_bias=False), (2, 5, 5, 6)),
]
CONV_T_CASES = [
    (dict(features=6, kernel_size=(6, 6), strides=(1, 1), padding="VALID", use_bias=False), (2, 1, 1, 5)),
    (dict(features=4, kernel_size=(4, 4), strides=(2, 2), padding=((2, 2), (2, 2))), (2, 5, 5, 3)),
    (dict(features=4, kernel_size=(4, 4), strides=(2, 2), padding=((2, 2), (2, 2))), (2, 4, 3, 3)),
    (dict(features=3, kernel_size=(5, 5), strides=(2, 2), padding="SAME"), (2, 4, 4, 3)),
    (dict(features=3, kernel_size=(5, 5), strides=(2, 2), padding="SAME"), (2, 5, 3, 2)),
    (dict(features=3, kernel_size=(3, 3), strides=(2, 2), padding="VALID"), (2, 3, 4, 2)),
    (dict(features=3, kernel_size=(2, 3), strides=(3, 2), padding=((0, 1), (3, -1))), (2, 4, 5, 2)),
    (dict(features=3, kernel_size=(3, 4), padding=((4, 0), (1, 2))), (2, 1, 1, 5)),
    (dict(features=3, kernel_size=(4, 4), strides=(2, 2), padding="SAME"), (2, 1, 2, 2)),
    (dict(features=3, kernel_size=(4, 4), strides=(2, 2), padding="SAME",
          transpose_kernel=True), (2, 3, 3, 2)),
    # Large enough for BACKEND "auto" to take the sub-pixel form.
    (dict(features=16, kernel_size=(5, 5), strides=(2, 2), padding="SAME"), (1, 12, 13, 2)),
]
PAIRS = [(nn.Conv, fast.FastConv, c) for c in CONV_CASES] + \
        [(nn.ConvTranspose, fast.FastConvTranspose, c) for c in CONV_T_CASES]
IDS = [f"{ref.__name__}-{i}" for i, (ref, _, _) in enumerate(PAIRS)]


def _setup(ref_cls, fast_cls, kwargs, shape):
  """Modules, numpy-random params in nn.Conv's tree, and an input.

  Numpy instead of the initialisers: compiling jax.random per shape costs
  seconds on these CPUs.
  """
  ref, fst = ref_cls(**kwargs), fast_cls(**kwargs)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
  abstract = jax.eval_shape(ref.init, jax.random.PRNGKey(0), x)["params"]
  params = jax.tree_util.tree_map(
      lambda a: jnp.asarray(rng.standard_normal(a.shape) * 0.3, a.dtype), abstract)
  return ref, fst, params, x


def _close(a, b, tol=2e-5):
  a, b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
  assert len(a) == len(b)
  for u, v in zip(a, b):
    assert u.shape == v.shape and u.dtype == v.dtype
    scale = max(float(jnp.max(jnp.abs(u))), 1e-3)
    np.testing.assert_allclose(np.asarray(v), np.asarray(u), rtol=0, atol=tol * scale)


def _everything(module, params, x, cot):
  """Output, first derivatives, and a gradient penalty's gradients, one jit."""
  def f(p, x):
    return module.apply({"params": p}, x)

  def loss(p, x):  # ||d g / d x||^2 for a nonlinear g: needs second derivatives
    gx = jax.grad(lambda p, x: jnp.sum(jnp.tanh(f(p, x)) * cot), argnums=1)(p, x)
    return jnp.sum(jnp.square(gx))

  @jax.jit
  def run(params, x):
    y, vjp = jax.vjp(f, params, x)
    return y, vjp(cot), jax.grad(loss, argnums=(0, 1))(params, x)
  return run(params, x)


# The forward lowerings (fast.BACKEND): the defaults, and every alternative.
LOWERINGS = [None, dict(strided="s2d", transposed="subpixel")]


@pytest.mark.parametrize("lowering", LOWERINGS, ids=["default", "s2d-subpixel"])
@pytest.mark.parametrize("ref_cls,fast_cls,case", PAIRS, ids=IDS)
def test_same_params_values_and_gradients(ref_cls, fast_cls, case, lowering, monkeypatch):
  for key, value in (lowering or {}).items():
    monkeypatch.setitem(fast.BACKEND, key, value)
  kwargs, shape = case
  ref, fst, params, x = _setup(ref_cls, fast_cls, kwargs, shape)
  fast_params = jax.eval_shape(fst.init, jax.random.PRNGKey(0), x)["params"]
  assert jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), fast_params) == \
      jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), params)

  out = jax.eval_shape(ref.apply, {"params": params}, x)
  cot = jnp.asarray(np.random.default_rng(1).standard_normal(out.shape), jnp.float32)
  y_ref, first_ref, second_ref = _everything(ref, params, x, cot)
  y_fast, first_fast, second_fast = _everything(fst, params, x, cot)
  _close(y_ref, y_fast)
  _close(first_ref, first_fast)
  _close(second_ref, second_fast, tol=5e-5)


@pytest.mark.parametrize("ref_cls,fast_cls,kwargs", [
    (nn.Conv, fast.FastConv, dict(features=4, kernel_size=(4, 4), kernel_init=conv_stack.dcgan_init)),
    (nn.ConvTranspose, fast.FastConvTranspose, dict(features=4, kernel_size=(5, 5))),
    (nn.Conv, fast.FastConv, dict(features=6, kernel_size=(3, 3), feature_group_count=3)),
])
def test_same_initial_params(ref_cls, fast_cls, kwargs):
  x = jnp.zeros((1, 6, 6, 3))
  key = jax.random.PRNGKey(0)
  _close(jax.jit(ref_cls(**kwargs).init)(key, x), jax.jit(fast_cls(**kwargs).init)(key, x), tol=0)


def test_batch_shapes_and_bf16_like_linen():
  kwargs = dict(features=4, kernel_size=(4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))
  ref, fst, params, x = _setup(nn.ConvTranspose, fast.FastConvTranspose, kwargs, (2, 3, 4, 4, 3))
  _close(ref.apply({"params": params}, x), fst.apply({"params": params}, x))
  _close(ref.apply({"params": params}, x[0, 0]), fst.apply({"params": params}, x[0, 0]))
  ref16 = nn.Conv(4, (5, 5), strides=2, dtype=jnp.bfloat16)
  fast16 = fast.FastConv(4, (5, 5), strides=2, dtype=jnp.bfloat16)
  params = {"kernel": jnp.ones((5, 5, 3, 4)) * 0.1, "bias": jnp.ones((4,))}
  y_ref, y_fast = ref16.apply({"params": params}, x[0]), fast16.apply({"params": params}, x[0])
  assert y_fast.dtype == y_ref.dtype == jnp.bfloat16
  _close(y_ref.astype(jnp.float32), y_fast.astype(jnp.float32), tol=2e-2)


def test_empty_output_is_a_clear_error():
  with pytest.raises(ValueError, match="output would be empty"):
    jax.eval_shape(fast.FastConv(2, (5, 5), padding="VALID").init, jax.random.PRNGKey(0),
                   jnp.zeros((1, 3, 3, 1)))


def _random_variables(module, x):
  """Random variables in `module`'s tree (statistics positive), no jax.random."""
  abstract = jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x, train=False), x)
  rng = np.random.default_rng(1)
  return {col: jax.tree_util.tree_map(
      lambda a: jnp.asarray(rng.standard_normal(a.shape) * 0.2 if col == "params" else
                            rng.uniform(0.5, 1.5, a.shape), a.dtype), tree)
          for col, tree in abstract.items()}


def _pair(name, conv_impl):
  c = config_lib.base_config(name)
  c.model.conv_impl, c.model.width, c.data.image_size = conv_impl, 4, 16
  c.model.latent_dim = 8
  c.model.critic_norm = "batch" if name == "dcgan" else "none"
  return models.build_models(c)


@pytest.mark.parametrize("kind", ["dcgan", "wgan_gp", "resnet"])
def test_models_match_and_penalty_grads_use_fast_convs(kind):
  """Tiny models: fast == xla, also for a penalty's gradients (second
  derivatives through G and D), which use only XLA:CPU's fast conv forms."""
  g_ref, d_ref = _pair(kind, "xla")
  g_fast, d_fast = _pair(kind, "fast")
  z = jnp.asarray(np.random.default_rng(0).standard_normal((2, 8)), jnp.float32)
  g_vars = _random_variables(g_ref, z)
  x = jax.jit(lambda v, z: g_ref.apply(v, z, train=False))(g_vars, z)
  d_vars = _random_variables(d_ref, x)

  def penalty_grads(g, d):
    def loss(g_params, d_params):
      fake = g.apply({**g_vars, "params": g_params}, z, train=False)
      score = lambda v: jnp.sum(d.apply({**d_vars, "params": d_params}, v, train=False))
      gx = jax.grad(score)(fake)
      return score(fake) + jnp.sum(jnp.square(gx))
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  args = (g_vars["params"], d_vars["params"])
  _close(penalty_grads(g_ref, d_ref)(*args), penalty_grads(g_fast, d_fast)(*args), tol=1e-4)

  # Every conv is in XLA:CPU's canonical form (NHWC x HWIO -> NHWC, kernel
  # not reversed), which it runs with YNNPACK or Eigen; inside loop bodies
  # (lax.scan) XLA does not canonicalise other forms and runs them in naive
  # loops, 50-100x slower: autodiff's weight gradients are such forms.
  hlo = penalty_grads(g_fast, d_fast).lower(*args).as_text()
  convs = [line for line in hlo.splitlines() if "stablehlo.convolution" in line]
  assert len(convs) > 20
  for line in convs:
    dims = re.search(r"dim_numbers = (.*?), window", line).group(1).replace(" ", "")
    assert dims == "[b,0,1,f]x[0,1,i,o]->[b,0,1,f]", line
    assert "true" not in re.search(r"reverse = \[(.*?)\]", line).group(1), line
