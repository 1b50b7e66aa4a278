"""The torch yardstick computes gemgan's losses on gemgan's weights, and the
same-run comparison reports every number (tiny sizes, no timing asserts)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import dcgan as dcgan_config
from configs import resnet as resnet_config
from configs import wgan_gp as wgan_config
from gemgan import losses
from gemgan import models
from gemgan import steps
from tests.tiny import converged_spectral_state

torch = pytest.importorskip("torch", reason="torch not installed (pip install -r "
                            "requirements-metrics.txt); the torch yardstick is skipped")
from benchmarks import torch_reference  # noqa: E402  pylint: disable=g-import-not-at-top


def small(module, n_critic=1, critic_norm=None):
  c = module.get_config()
  c.data.image_size, c.model.width, c.batch_size, c.n_critic = 32, 8, 4, n_critic
  c.augment.policy = ""
  c.model.critic_norm = critic_norm or c.model.critic_norm
  return c


def _torch_iteration(c, state):
  it = torch_reference.TorchIteration(c)
  torch_reference.load_gemgan_variables(it.g, jax.device_get(state.generator.params),
                                        jax.device_get(state.generator.state))
  torch_reference.load_gemgan_variables(it.d, jax.device_get(state.critic.params),
                                        jax.device_get(state.critic.state))
  return it


def _apply(module, params, state, x):
  out = module.apply({"params": params, **state}, x, None, train=True, mutable=list(state))
  return out[0]


def gemgan_losses(c, state, *, g, d, real, z, alpha):
  """gemgan's critic objective and generator loss as steps.py composes them."""
  loss = losses.LOSSES[c.loss]
  fake = _apply(g, state.generator.params, state.generator.state, z)
  critic_fn = lambda x: _apply(d, state.critic.params, state.critic.state, x)
  d_loss = loss.d(critic_fn(real), critic_fn(fake))
  if c.gp_weight:
    d_loss += c.gp_weight * losses.gradient_penalty(critic_fn, real, fake, alpha)
  return d_loss, loss.g(critic_fn(fake))


# The ResNet's loss wiring (hinge) without spectral norm: torch's power
# iteration moves u in every training forward, so its D(real) and D(fake)
# would see two different sigmas where this test's gemgan calls see one.
@pytest.mark.parametrize("module,norm", [(dcgan_config, None), (wgan_config, None),
                                         (resnet_config, "none")],
                         ids=["dcgan", "wgan_gp", "resnet_hinge"])
def test_torch_losses_equal_gemgan_on_the_same_weights(module, norm):
  c = small(module, critic_norm=norm)
  g, d = models.build_models(c)
  state = steps.create_train_state(c, g, d)
  rng = np.random.RandomState(0)
  real = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
  z = rng.randn(4, c.model.latent_dim).astype(np.float32)
  alpha = rng.uniform(0, 1, (4,)).astype(np.float32)
  want = jax.jit(functools.partial(gemgan_losses, c, g=g, d=d))(
      state, real=jnp.asarray(real), z=jnp.asarray(z), alpha=jnp.asarray(alpha))

  it = _torch_iteration(c, state)
  d_loss, _ = it.critic_loss(it.prepare(real), torch.from_numpy(z), torch.from_numpy(alpha))
  g_loss = it.generator_loss(torch.from_numpy(z))
  np.testing.assert_allclose([float(d_loss.detach()), float(g_loss.detach())], np.array(want), atol=1e-4, rtol=1e-4)


def test_torch_resnet_equals_gemgan_with_spectral_norm():
  # One training-mode forward of each network from the loaded weights,
  # BatchNorm batch statistics and spectral norm's u: the same outputs.
  c = small(resnet_config, critic_norm="spectral")
  g, d = models.build_models(c)
  state = steps.create_train_state(c, g, d)
  # Converged power iterations (u = the top singular vector, from an SVD):
  # flax and torch order their one iteration a forward differently.
  state = state.replace(critic=state.critic.replace(
      state=converged_spectral_state(state.critic.params,
                                     jax.device_get(state.critic.state))))
  rng = np.random.RandomState(1)
  z = rng.randn(4, c.model.latent_dim).astype(np.float32)
  real = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
  want_fake = _apply(g, state.generator.params, state.generator.state, jnp.asarray(z))
  want_scores = _apply(d, state.critic.params, state.critic.state, jnp.asarray(real))
  it = _torch_iteration(c, state)
  fake = it.g(torch.from_numpy(z)).detach().permute(0, 2, 3, 1).numpy()
  scores = it.d(it.prepare(real)).detach().numpy()[:, 0]
  np.testing.assert_allclose(fake, np.array(want_fake), atol=1e-5)
  np.testing.assert_allclose(scores, np.array(want_scores), atol=1e-4, rtol=1e-4)
  assert abs(float(np.abs(np.array(want_scores)).max())) > 1e-3  # not trivially zero


def test_vs_torch_reports_every_number():
  # One round of the same-run comparison at tiny sizes, without torch.compile
  # (30-50 s to compile). Speeds are not checked, only that each is measured.
  from gemgan import benchmark  # pylint: disable=g-import-not-at-top
  r = benchmark.compare_with_torch(small(dcgan_config), rounds=1, steps_per_round=1,
                                   precisions=("float32", "bfloat16"), torch_compile=False,
                                   matmul_n=256)
  assert [(row["precision"], row["impl"]) for row in r["rows"]] == [
      (p, impl) for p in ("float32", "bfloat16") for impl in ("gemgan", "torch eager")]
  for row in r["rows"]:
    for key in ("images_per_sec", "gemgan_ratio", "setup_seconds", "achieved_gflops"):
      assert row[key] > 0, (row, key)
  assert sorted(r["matmul_peak_gflops"]) == ["jax_bfloat16", "jax_float32", "torch_bfloat16",
                                             "torch_float32"]
  assert all(v > 0 for v in r["matmul_peak_gflops"].values())
  assert r["flops_per_iteration"] > 0 and r["cpu_model"] and isinstance(r["cpu_flags"], list)
  assert "rounds" in benchmark.format_comparison(r)


def test_torch_fused_critic_and_batched_fakes_compute_the_plain_forms():
  """The reference's step variants (as gemgan's): one G pass over three latent
  batches whose BatchNorm keeps each batch's statistics gives the three passes'
  fakes, and one critic pass over cat(real, fake) the two passes' loss (no
  spectral norm); a whole iteration with both and DiffAugment runs."""
  c = small(resnet_config, n_critic=2, critic_norm="none")
  it = torch_reference.TorchIteration(c)
  rng = np.random.RandomState(0)
  real = it.prepare(rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32))
  zs = [torch.from_numpy(rng.randn(4, c.model.latent_dim).astype(np.float32)) for _ in range(3)]
  alpha = torch.rand(4)
  plain = it.fakes(zs)
  want = it.critic_loss(real, None, alpha, fake=plain[1])[0]
  c.fused_critic = c.batched_fakes = True  # `it` reads its config at each call
  batched = it.fakes(zs)
  for a, b in zip(batched, plain):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
  got = it.critic_loss(real, None, alpha, fake=batched[1])[0]
  np.testing.assert_allclose(float(got.detach()), float(want.detach()), rtol=1e-5, atol=1e-6)
  c.augment.policy = "color,translation,cutout"
  it = torch_reference.TorchIteration(c)
  assert np.isfinite(it.step([real, real]))


def test_torch_translation_and_cutout_are_gemgan_s_ops():
  """A shift of at most H/8 x W/8 with zero fill; an H/2 x W/2 square, clipped, zeroed."""
  gen = torch.Generator().manual_seed(0)
  x = torch.from_numpy(np.random.RandomState(0).uniform(1, 2, (8, 3, 16, 16)).astype(np.float32))
  shifted = torch_reference._translation(x, gen).numpy()  # pylint: disable=protected-access
  padded = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)))
  for img, out in zip(padded, shifted):
    windows = [img[:, 2 + dh:18 + dh, 2 + dw:18 + dw] for dh in range(-2, 3) for dw in range(-2, 3)]
    assert any(np.array_equal(out, w) for w in windows)
  cut = torch_reference._cutout(x, gen).numpy() == 0  # pylint: disable=protected-access
  for mask in cut[:, 0]:
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    assert mask.sum() == len(rows) * len(cols) and 0 < len(rows) <= 8 and 0 < len(cols) <= 8
    assert mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()
