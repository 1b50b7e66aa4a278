"""FastGAN (gemgan/models/fastgan.py) against hand computations and the real step."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import fastgan as fastgan_config
from gemgan import config_lib
from gemgan import models
from gemgan import steps
from gemgan.models import fastgan
from tests.tiny import tiny_config


def test_shapes_at_every_supported_size():
  """Traced only (jax.eval_shape): the shapes of G, D and the reconstruction at each size."""
  for size in fastgan.SIZES:
    c = tiny_config(fastgan_config, "conditional", size=size, width=4)
    config_lib.validate(c)
    g, d = models.build_models(c, num_classes=3)
    labels = jnp.array([0, 2])
    z, x = jnp.zeros((2, 8)), jnp.zeros((2, size, size, 3))
    gv = jax.eval_shape(lambda: models.init_variables(g, jax.random.PRNGKey(0), z, labels))
    dv = jax.eval_shape(lambda: models.init_variables(d, jax.random.PRNGKey(1), x, labels))
    images = jax.eval_shape(lambda v: g.apply(v, z, labels, train=False), gv)
    assert images.shape == (2, size, size, 3)
    scores, recon = jax.eval_shape(lambda v: d.apply(
        v, x, labels, train=False, reconstruct=True, rngs={"dropout": jax.random.PRNGKey(3)}), dv)
    assert (scores.shape, recon.shape) == ((2,), ())


@pytest.mark.parametrize("size", [32, 80, 192])
def test_config_refuses_sizes_it_cannot_make(size):
  c = tiny_config(fastgan_config, size=size, width=4)
  with pytest.raises(config_lib.ConfigError, match="config.data.image_size"):
    config_lib.validate(c)


def test_excitation_gate_hand_computed():
  rng = np.random.RandomState(0)
  source = rng.randn(2, 4, 4, 3).astype(np.float32)  # already 4x4: the pool is the identity
  target = rng.randn(2, 5, 5, 6).astype(np.float32)
  module = fastgan.Excitation(models.layers.resolve_convs("xla").conv)
  v = module.init(jax.random.PRNGKey(0), source, target, train=False)
  p = v["params"]
  w0, b0 = np.asarray(p["conv_0"]["kernel"]), np.asarray(p["conv_0"]["bias"])
  w1, b1 = np.asarray(p["conv_1"]["kernel"]), np.asarray(p["conv_1"]["bias"])
  h = np.einsum("bhwc,hwco->bo", source, w0) + b0  # conv4x4, valid: one output position
  h = h / (1 + np.exp(-h))  # swish
  gate = 1 / (1 + np.exp(-(h @ w1[0, 0] + b1)))
  expected = target * gate[:, None, None, :]
  np.testing.assert_allclose(module.apply(v, source, target, train=False), expected,
                             rtol=1e-5, atol=1e-6)


def test_adaptive_pool_matches_torch():
  torch = pytest.importorskip("torch")
  x = np.random.RandomState(1).randn(2, 6, 10, 3).astype(np.float32)
  expected = torch.nn.AdaptiveAvgPool2d(4)(torch.from_numpy(x).permute(0, 3, 1, 2))
  np.testing.assert_allclose(fastgan.adaptive_avg_pool(jnp.asarray(x), 4),
                             expected.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-6)


def test_reconstruction_loss_closed_form():
  rng = np.random.RandomState(2)
  images = rng.uniform(-1, 1, (3, 8, 8, 3)).astype(np.float32)
  whole = rng.uniform(-1, 1, (3, 4, 4, 3)).astype(np.float32)
  part = rng.uniform(-1, 1, (3, 4, 4, 3)).astype(np.float32)
  index = np.array([0, 3, 1])
  pooled = images.reshape(3, 4, 2, 4, 2, 3).mean(axis=(2, 4))
  corners = {0: (0, 0), 1: (0, 4), 2: (4, 0), 3: (4, 4)}
  quads = np.stack([images[i, r:r + 4, c:c + 4] for i, (r, c) in
                    enumerate(corners[j] for j in index)])
  expected = np.abs(whole - pooled).mean() + np.abs(part - quads).mean()
  got = fastgan.reconstruction_loss(whole, part, jnp.asarray(images), jnp.asarray(index))
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_glu_hand_computed():
  x = np.array([[1.0, -2.0, 0.0, 3.0]], np.float32)
  np.testing.assert_allclose(fastgan.glu(jnp.asarray(x)),
                             [[1.0 / (1 + np.exp(-0.0)), -2.0 / (1 + np.exp(-3.0))]], rtol=1e-6)


def _batch64(c, seed):
  from tests.test_steps import real_batch  # pylint: disable=g-import-not-at-top
  b = real_batch(c, seed)
  return {"image": jnp.repeat(jnp.repeat(b["image"], 4, axis=2), 4, axis=3), "label": b["label"]}


def test_recipe_trains_inside_the_real_step():
  """Conditional, low-pass, one G pass per iteration: every FastGAN path in one compiled step.

  The shared-fakes iteration is checked against the two-pass one in
  test_steps.py; this is where it also runs inside the real step.
  """
  c = tiny_config(fastgan_config, "conditional,lowpass", size=64, width=4, share_fakes=True)
  c.num_train_kimg = 0.1
  g, d = models.build_models(c, num_classes=2)
  state = steps.create_train_state(c, g, d)
  step = jax.jit(steps.make_train_step(c, g, d))
  hist = []
  for i in range(2):
    batch = _batch64(c, i)
    batch["label"] = jnp.arange(c.batch_size)[None] % 2
    state, m = step(state, batch)
    hist.append(jax.device_get(m))
  assert int(state.step) == 2
  assert all(np.isfinite(v) for h in hist for v in h.values()), hist[-1]
  assert hist[0]["recon_loss"] > 0  # the reconstruction term is in the critic's loss
