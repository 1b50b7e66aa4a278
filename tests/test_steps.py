"""The jitted iteration: learning on a toy problem, step bookkeeping, determinism."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import dcgan as dcgan_config
from configs import wgan_gp as wgan_config
from gemgan import models
from gemgan import steps
from tests.tiny import converged_spectral_state
from tests.tiny import tiny_config


tiny = tiny_config


def real_batch(c, seed=0):
  """Bright disks on black: an easy 'data set' for the critic to spot."""
  yy, xx = np.mgrid[:16, :16]
  disk = ((yy - 7.5) ** 2 + (xx - 7.5) ** 2 < 25).astype(np.float32)
  img = np.repeat(disk[..., None] * 1.8 - 0.9, 3, -1)
  rng = np.random.RandomState(seed)
  images = img[None, None] + 0.05 * rng.randn(c.n_critic, c.batch_size, 16, 16, 3)
  return {"image": jnp.asarray(images, jnp.float32),
          "label": jnp.zeros((c.n_critic, c.batch_size), jnp.int32)}


def run(c, num_steps, batch_fn=real_batch):
  g, d = models.build_models(c)
  state = steps.create_train_state(c, g, d)
  step = jax.jit(steps.make_train_step(c, g, d))
  history = []
  for i in range(num_steps):
    state, m = step(state, batch_fn(c, i))
    history.append(jax.device_get(m))
  return state, history


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("module", [dcgan_config, wgan_config])
def test_critic_loss_decreases_against_a_frozen_generator(module, precision):
  c = tiny(module, precision=precision)
  c.optimizer.g_lr = 1e-12  # effectively frozen: only the critic learns
  c.optimizer.d_lr = 1e-2
  state, hist = run(c, 12)
  first, last = hist[0]["d_loss"], np.mean([h["d_loss"] for h in hist[-3:]])
  assert last < first - 0.1, (first, last)
  assert hist[-1]["d_real"] > hist[-1]["d_fake"]
  # bf16 computes; parameters, optimizer state, losses and the penalty stay fp32.
  for leaf in jax.tree_util.tree_leaves((state.generator, state.critic, state.ema_params)):
    assert leaf.dtype in (jnp.float32, jnp.int32), leaf.dtype
  assert all(np.isfinite(v) and v.dtype == np.float32 for h in hist for v in h.values())


def test_bf16_step_is_close_to_fp32():
  batch = real_batch(tiny(wgan_config))
  metrics = {}
  for precision in ("float32", "bfloat16"):
    c = tiny(wgan_config, precision=precision)
    g, d = models.build_models(c)
    _, metrics[precision] = jax.jit(steps.make_train_step(c, g, d))(
        steps.create_train_state(c, g, d), batch)
  for key in ("d_loss", "gradient_penalty", "wasserstein", "g_loss"):
    np.testing.assert_allclose(metrics["bfloat16"][key], metrics["float32"][key], rtol=0.01,
                               atol=1e-3, err_msg=key)


def test_same_seed_same_run_and_seed_matters():
  c = tiny(wgan_config)
  c.n_critic = 1
  a, _ = run(c, 2)
  b, _ = run(c, 2)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(x, y)
  c.seed = 1
  other, _ = run(c, 2)
  assert not np.allclose(a.generator.params["conv_0"]["kernel"], other.generator.params["conv_0"]["kernel"])


def test_on_device_batches_equal_host_batches():
  data = np.random.RandomState(0).randint(0, 256, (10, 16, 16, 3)).astype(np.uint8)
  idx = np.array([[3, 0, 9]])
  flip = np.array([[True, False, True]])
  out = steps.images_from_indices(jnp.asarray(data), idx, flip)
  expected = data[idx].astype(np.float32) / 127.5 - 1
  expected[0, 0] = expected[0, 0, :, ::-1]
  expected[0, 2] = expected[0, 2, :, ::-1]
  np.testing.assert_allclose(out, expected, atol=1e-6)


def test_unrolled_critic_loop_gives_the_same_step_and_counts_updates():
  c = tiny(wgan_config, "seed", n_critic=3)  # the seed preset: 2 generator updates
  g, d = models.build_models(c)
  state = steps.create_train_state(c, g, d)
  batch = real_batch(c)
  looped = jax.jit(steps.make_train_step(c, g, d))(state, batch)
  unrolled = jax.jit(steps.make_train_step(c, g, d, unroll_critic=True))(state, batch)
  for a, b in zip(jax.tree_util.tree_leaves(looped), jax.tree_util.tree_leaves(unrolled)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  new_state, metrics = looped
  assert int(new_state.step) == 1
  # optax.adam's ScaleByAdamState carries its own update count.
  assert int(new_state.critic.opt_state[0].count) == 3
  assert int(new_state.generator.opt_state[0].count) == 2
  assert all(np.isfinite(v) for v in jax.device_get(metrics).values())


from configs import hinge_sn as hinge_config  # noqa: E402
from configs import r3gan as r3gan_config  # noqa: E402
from configs import resnet as resnet_config  # noqa: E402


@pytest.mark.parametrize("module,preset,width,changes", [
    # hinge + SN + EMA + DiffAugment, [1,2,1] resampling, the folded critic, one critic
    # pass, the fade of a growing run (alpha 0.5 then 1 at steps 1 and 2: gemgan.growing)
    (resnet_config, "lowpass", 4, {"model.critic_stem": "space_to_depth",
                                   "model.critic_width": 8, "fused_critic": True,
                                   "grow.size": 8, "grow.kimg": 0.016, "grow.fade_kimg": 0.032}),
    (resnet_config, "ada,conditional", 4, {}),  # ADA + conditional BN + projection
    (hinge_config, "r1", 4, {}),  # lazy R1
    (r3gan_config, "", 8, {}),  # RpGAN + R1 + R2 + ADA + cosine schedules
])
def test_every_recipe_trains_inside_the_real_step(module, preset, width, changes):
  c = tiny(module, preset)
  c.model.width = width
  c.update_from_flattened_dict(changes)
  if module is r3gan_config:
    c.model.group_width = 4  # divides width * expansion = 16
  c.num_train_kimg = 0.1
  state, hist = run(c, 3)
  assert int(state.step) == 3
  assert all(np.isfinite(v) for h in hist for v in h.values()), hist[-1]
  if c.r1_weight:
    assert hist[0]["r1_penalty"] > 0
  if c.r2_weight:
    assert hist[-1]["r2_penalty"] > 0
  if c.grow.size:
    assert float(state.generator.state["grow"]["alpha"]) == 1.0


def test_ada_probability_follows_its_update_rule_inside_the_step():
  c = tiny(resnet_config, "ada", n_critic=1)
  c.augment.p, c.augment.ada_interval, c.augment.ada_kimg = 0.5, 1, 0.1
  state, hist = run(c, 3)
  p = 0.5
  for h in hist:  # every iteration: p += sign(r_t - 0.6) * batch / (kimg * 1000)
    p = float(np.clip(p + np.sign(h["overfit_rt"] - 0.6) * c.batch_size / 100.0, 0, 1))
    np.testing.assert_allclose(h["augment_p"], p, rtol=1e-6)
  np.testing.assert_allclose(state.augment.p, p, rtol=1e-6)


def test_r3gan_schedules_reach_their_ends():
  from gemgan import schedules  # pylint: disable=g-import-not-at-top
  c = r3gan_config.get_config()
  c.num_train_kimg = 10.0  # the schedules span the run (schedule.kimg 0)
  np.testing.assert_allclose(schedules.value(c, "b2", 0.9, 0.0), 0.9)
  np.testing.assert_allclose(schedules.value(c, "b2", 0.9, 5_000.0), 0.945, rtol=1e-6)
  np.testing.assert_allclose(schedules.value(c, "b2", 0.9, 20_000.0), 0.99, rtol=1e-6)
  tx = steps.make_optimizer(c, c.optimizer.g_lr)
  opt = tx.init({"w": jnp.zeros(2)})
  for _ in range(200):  # 200 updates x batch 64 = 12.8k images: past the end
    _, opt = tx.update({"w": jnp.ones(2)}, opt)
  np.testing.assert_allclose(opt.hyperparams["learning_rate"], 5e-5, rtol=1e-5)
  np.testing.assert_allclose(opt.hyperparams["b2"], 0.99, rtol=1e-6)
  # gamma halfway is the mean of start and end, R2 moves with R1; D's lr with G's.
  w = steps._penalty_weights(c, 5_000.0)  # pylint: disable=protected-access
  g0, g1 = c.r1_weight, c.schedule.gamma_end
  np.testing.assert_allclose(w.r1, (g0 + g1) / 2, rtol=1e-6)
  np.testing.assert_allclose(w.r2, c.r2_weight * (1 + g1 / g0) / 2, rtol=1e-6)
  np.testing.assert_allclose(schedules.factor(c, "aug_p_unset", 1.0, 5_000.0), 1.0)
  d_tx = steps.make_optimizer(c, 2 * c.optimizer.g_lr)
  d_opt = d_tx.init({"w": jnp.zeros(2)})
  for _ in range(200):
    _, d_opt = d_tx.update({"w": jnp.ones(2)}, d_opt)
  np.testing.assert_allclose(d_opt.hyperparams["learning_rate"], 2 * 5e-5, rtol=1e-5)


def test_shared_fakes_equal_a_second_generator_pass():
  """share_fakes' G update (VJP of the critic's pass) equals recomputing G(z)."""
  from gemgan import objectives  # pylint: disable=g-import-not-at-top
  c = tiny(resnet_config, "", n_critic=1, share_fakes=True)
  g_mod, d_mod = models.build_models(c)
  state = steps.create_train_state(c, g_mod, d_mod)
  nets = steps._Nets(c, g_mod, d_mod, *steps.make_optimizers(c), steps.augment_fn(c))
  b = real_batch(c)
  real, labels = b["image"][0], b["label"][0]
  z = nets.latent(jax.random.PRNGKey(5), c.batch_size)
  key, p = jax.random.PRNGKey(6), state.augment.p
  weights = steps._penalty_weights(c, 0.0)
  g, d, _, _ = jax.jit(lambda: steps.shared_fakes_iteration(
      nets, state.generator, state.critic, real, labels, z, key, p, weights))()

  def two_pass():
    k_d, k_g = jax.random.split(key)
    fake, _ = nets.generate(state.generator, state.generator.params, z, labels)
    d2, _ = steps._critic_update(nets, state.critic, (real, labels, k_d, 0), state.generator,
                                 p, weights, fake=fake)
    loss = lambda params: objectives.generator_objective(
        c, nets.run_critic(d2.params, labels, p), d2.state,
        nets.generate(state.generator, params, z, labels)[0], real, k_g)[0]
    grads = jax.grad(loss)(state.generator.params)
    updates, _ = nets.g_tx.update(grads, state.generator.opt_state, state.generator.params)
    return optax.apply_updates(state.generator.params, updates), d2.params

  g_params, d_params = jax.jit(two_pass)()
  for a, e in zip(jax.tree_util.tree_leaves((g.params, d.params)),
                  jax.tree_util.tree_leaves((g_params, d_params))):
    np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def _critic_loss_and_grads(c, nets, state, d_state, real, fake, labels, key):
  """critic_objective's loss, aux and gradients w.r.t. the critic's parameters."""
  from gemgan import objectives  # pylint: disable=g-import-not-at-top

  def loss_fn(d_params):
    return objectives.critic_objective(c, nets.run_critic(d_params, labels, state.augment.p),
                                       d_state, real, fake, key, 0, steps._penalty_weights(c, 0.0))
  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.critic.params)
  return loss, aux, grads


def _nets(c, num_classes=0):
  g, d = models.build_models(c, num_classes)
  nets = steps._Nets(c, g, d, *steps.make_optimizers(c), steps.augment_fn(c))
  return nets, steps.create_train_state(c, g, d)


def _fused_and_two_pass(c, nets, state, d_state, labels):
  """critic_objective's (loss, aux, grads) with fused_critic on and off, one jit."""
  fused = c.copy_and_resolve_references()
  fused.fused_critic = True
  real = real_batch(c)["image"][0]
  fake = jax.random.uniform(jax.random.PRNGKey(3), real.shape, minval=-1.0, maxval=1.0)
  args = (state, d_state, real, fake, labels, jax.random.PRNGKey(4))
  return jax.jit(lambda: (_critic_loss_and_grads(fused, nets, *args),
                          _critic_loss_and_grads(c, nets, *args)))()


def _assert_trees_close(a, b, rtol, atol):
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_fused_critic_loss_and_gradients_equal_two_passes():
  """Without spectral norm one pass over concat(real, fake) is the two passes'
  function: DiffAugment per half with its own key, labels concatenated alike."""
  c = tiny(resnet_config, "conditional")  # hinge, DiffAugment, projection head
  c.model.critic_norm = "none"
  nets, state = _nets(c, num_classes=3)
  labels = jnp.arange(c.batch_size, dtype=jnp.int32) % 3
  (loss, aux, grads), (loss2, aux2, grads2) = _fused_and_two_pass(
      c, nets, state, state.critic.state, labels)
  for key in ("real_out", "fake_out"):
    np.testing.assert_allclose(aux[key], aux2[key], rtol=1e-5, atol=1e-6, err_msg=key)
  np.testing.assert_allclose(loss, loss2, rtol=1e-5, atol=1e-6)
  _assert_trees_close(grads, grads2, rtol=1e-4, atol=1e-6)


def test_fused_critic_with_spectral_norm_runs_one_power_iteration():
  """Both halves see the sigma of one power iteration from the stored u, and the
  state after it (the two-pass form runs a second for the fakes); from a
  converged u (an SVD's) the loss and gradients equal the two-pass ones."""
  c = tiny(resnet_config, "conditional")  # SN, hinge, DiffAugment, projection head
  nets, state = _nets(c, num_classes=3)
  labels = jnp.arange(c.batch_size, dtype=jnp.int32) % 3
  real = real_batch(c)["image"][0]
  fake = -real[::-1]
  k_real, k_fake = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
  run = nets.run_critic(state.critic.params, labels, state.augment.p)
  s0 = state.critic.state

  def passes():
    fused = run((real, fake), s0, (k_real, k_fake))
    real_out, s1 = run(real, s0, k_real)
    return fused, (real_out, run(fake, s0, k_fake)[0]), s1, run(fake, s1, k_fake)[0]

  ((fused_real, fused_fake), fused_state), same_u, s1, second_iteration = jax.jit(passes)()
  _assert_trees_close((fused_real, fused_fake, fused_state), (*same_u, s1), 1e-5, 1e-6)
  assert not np.allclose(fused_fake, second_iteration, rtol=1e-4)  # u0 is random: sigma moves
  converged = converged_spectral_state(state.critic.params, jax.device_get(s0))
  (loss, aux, grads), (loss2, aux2, grads2) = _fused_and_two_pass(c, nets, state, converged,
                                                                  labels)
  np.testing.assert_allclose(loss, loss2, rtol=1e-5, atol=1e-6)
  _assert_trees_close((aux["real_out"], aux["fake_out"]), (aux2["real_out"], aux2["fake_out"]),
                      1e-5, 1e-5)
  _assert_trees_close(grads, grads2, rtol=1e-4, atol=1e-5)


def test_batched_fakes_and_fused_critic_step_equals_the_base_step():
  """The whole iteration (n_critic 3, conditional BatchNorm in G, DiffAugment,
  EMA, no spectral norm: where fused_critic is the same function): the fakes
  made up front in one vmapped G pass are the loop's (same latents), and one
  critic pass scores both halves, so the step equals the base step up to
  float reassociation.

  G's conv biases before BatchNorm have zero gradient in exact arithmetic, and
  Adam scales their float noise up to a full step: G's update is compared by
  its loss and gradient norm, everything else leaf by leaf."""
  c = tiny(resnet_config, "conditional", n_critic=3)
  c.model.critic_norm = "none"
  g, d = models.build_models(c, num_classes=3)
  state = steps.create_train_state(c, g, d)
  batch = real_batch(c)
  batch["label"] = jnp.arange(c.n_critic * c.batch_size).reshape(c.n_critic, -1) % 3
  other = c.copy_and_resolve_references()
  other.batched_fakes = other.fused_critic = True
  (want, want_m), (got, got_m) = [jax.jit(steps.make_train_step(config, g, d))(state, batch)
                                  for config in (c, other)]
  _assert_trees_close((got.critic, got.augment, got_m), (want.critic, want.augment, want_m),
                      rtol=1e-5, atol=1e-6)
  assert got_m["g_grad_norm"] > 0 and int(got.step) == 1
