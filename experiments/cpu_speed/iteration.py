"""A minimal whole GAN iteration, plain linen convs vs gemgan.ops FastConv*.

One `jax.jit` per iteration: a critic update, then a generator update, Adam,
batch 64, 96 px, the project's models (gemgan/models.py) with conv_impl
"xla" or "fast":
- dcgan: the notebook's DCGAN (BatchNorm in G and D), BCE on logits.
- wgan_gp: the WGAN-GP networks, Wasserstein loss + 10 * gradient penalty
  (jax.grad of the critic on interpolates), one critic step per iteration.
No lax.scan (see train_iter.py for the project's step). Variants are built
side by side and timed round-robin in one process (the machine is shared;
compare within a run; see common.py): images/s = batch / iteration
seconds, medians over rounds.

  python -m experiments.cpu_speed.iteration --model dcgan [--impls xla,fast] \
      [--rounds 3] [--steps 2]

XLA flags are per process: prefix XLA_FLAGS=... to compare them.
"""
import argparse
import time

import jax
import jax.numpy as jnp
import optax

from gemgan import benchmark
from gemgan import config_lib
from gemgan import losses
from gemgan import models

from experiments.cpu_speed import common


def make_iteration(kind: str, impl: str, batch: int, size: int = 96, width: int = 64):
  """(jitted step, initial state, data) for one model kind and conv impl."""
  c = config_lib.base_config(kind)
  c.model.conv_impl, c.data.image_size, c.model.width = impl, size, width
  c.model.critic_norm = "batch" if kind == "dcgan" else "none"
  gen, crit = models.build_models(c)
  key = jax.random.PRNGKey(0)
  g_vars = jax.jit(gen.init, static_argnames="train")(key, jnp.zeros((2, 100)), train=False)
  d_vars = jax.jit(crit.init, static_argnames="train")(key, jnp.zeros((2, size, size, 3)),
                                                       train=False)
  tx = optax.adam(2e-4, b1=0.5, b2=0.999)
  state = dict(g=g_vars, d=d_vars, g_opt=tx.init(g_vars["params"]),
               d_opt=tx.init(d_vars["params"]))

  def run(module, variables, params, x):
    out, new = module.apply({**variables, "params": params}, x, train=True,
                            mutable=["batch_stats"])
    return out, {**variables, **new}

  def step(state, real, key):
    k_z, k_alpha = jax.random.split(key)
    z = jax.random.normal(k_z, (batch, 100))
    fake, g_vars = run(gen, state["g"], state["g"]["params"], z)
    fake = jax.lax.stop_gradient(fake)

    def d_loss_fn(d_params):
      real_out, d_vars = run(crit, state["d"], d_params, real)
      fake_out, d_vars = run(crit, d_vars, d_params, fake)
      if kind == "dcgan":
        return losses.nonsaturating_d_loss(real_out, fake_out), d_vars
      alpha = jax.random.uniform(k_alpha, (batch,))
      critic_fn = lambda x: run(crit, d_vars, d_params, x)[0]
      gp = losses.gradient_penalty(critic_fn, real, fake, alpha)
      return losses.wasserstein_d_loss(real_out, fake_out) + 10.0 * gp, d_vars

    (d_loss, d_vars), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state["d"]["params"])
    updates, d_opt = tx.update(d_grads, state["d_opt"], d_vars["params"])
    d_vars = {**d_vars, "params": optax.apply_updates(d_vars["params"], updates)}

    def g_loss_fn(g_params):
      fake, g_new = run(gen, state["g"], g_params, z)
      out, _ = run(crit, d_vars, d_vars["params"], fake)
      loss = losses.nonsaturating_g_loss(out) if kind == "dcgan" else \
          losses.wasserstein_g_loss(out)
      return loss, g_new

    (g_loss, g_vars), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state["g"]["params"])
    updates, g_opt = tx.update(g_grads, state["g_opt"], g_vars["params"])
    g_vars = {**g_vars, "params": optax.apply_updates(g_vars["params"], updates)}
    return dict(g=g_vars, d=d_vars, g_opt=g_opt, d_opt=d_opt), (d_loss, g_loss)

  real = jax.random.uniform(key, (batch, size, size, 3), minval=-1.0, maxval=1.0)
  return jax.jit(step, donate_argnums=0), state, real


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--model", default="dcgan", choices=["dcgan", "wgan_gp"])
  args = common.parse_timing_args(parser)
  runs = {}
  # Model FLOPs, counted on plain convs: faster forms that multiply zeros
  # (gemgan.ops.conv's sub-pixel convs) must not count as work.
  step, state, real = make_iteration(args.model, "xla", args.batch)
  gflop = benchmark.xla_flops(step.lower(state, real, jax.random.PRNGKey(0))) / 1e9
  for impl in args.impls.split(","):
    step, state, real = make_iteration(args.model, impl, args.batch)
    t = time.perf_counter()
    compiled = step.lower(state, real, jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    state, out = compiled(state, real, jax.random.PRNGKey(0))
    jax.block_until_ready(out)
    first_s = time.perf_counter() - t
    print(f"{impl}: compile {compile_s:.1f} s, first step {first_s:.1f} s, {gflop:.1f} GFLOP/"
          f"iteration (XLA cost analysis, plain convs), losses {float(out[0]):.4f} {float(out[1]):.4f}",
          flush=True)
    runs[impl] = dict(step=compiled, state=state, real=real, gflop=gflop)
  common.rounds(runs, args.rounds, args.steps, _call)
  common.report(f"{args.model} batch={args.batch}", runs, args.batch)


def _call(run):
  run["i"] = run.get("i", 0) + 1
  run["state"], out = run["step"](run["state"], run["real"], jax.random.PRNGKey(run["i"]))
  return out


if __name__ == "__main__":
  main()
