"""Speed of a config on this machine: `python -m gemgan.benchmark --config=...`.

Prints training images/s (median and min-max over repeats, after warm-up),
compile seconds of the first step, sampling and input-pipeline images/s,
model FLOPs per iteration from XLA's cost analysis (`iteration_flops`), the
achieved FLOP/s and that as a fraction (MFU) of the devices' matmul peak in
the config's compute precision (one device's, measured in the same run,
times the device count).
Images/s counts generator images: batch_size x iterations/s (each iteration
also runs n_critic critic updates; `--config.n_critic` changes it).
Training data are random uint8 images already on the device, so the step is
measured alone; the input pipeline is measured separately.
"""
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from gemgan import config_lib
from gemgan import models
from gemgan import parallel
from gemgan import steps

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training config file (and :preset).")
flags.DEFINE_integer("repeats", 5, "Timed repeats (each of --steps iterations).")
flags.DEFINE_integer("steps", 5, "Iterations per timed repeat.")
flags.DEFINE_integer("warmup", 2, "Untimed iterations after compiling.")
flags.DEFINE_bool("input", True, "Also time the tf.data input pipeline (prepares the data).")
flags.DEFINE_bool("json", False, "Print one JSON object instead of a table.")
flags.mark_flags_as_required(["config"])


def _block(tree):
  jax.block_until_ready(tree)
  return tree


def matmul_peak_flops(n: int = 4096, dtype=jnp.float32, repeats: int = 5) -> float:
  """Measured FLOP/s of an n x n matmul: the machine's practical peak."""
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
  f = jax.jit(lambda x: x @ x)
  _block(f(a))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    _block(f(a))
    times.append(time.perf_counter() - t)
  return 2 * n**3 / min(times)


def _timed(fn, repeats, steps_per_repeat):
  """Per-repeat seconds per call of `fn` (which blocks)."""
  out = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(steps_per_repeat):
      fn()
    out.append((time.perf_counter() - t) / steps_per_repeat)
  return out


def compile_train_step(config, num_images: int = 512):
  """The sharded, jitted training iteration, compiled, on device-resident
  random uint8 images (the step alone, no input pipeline).

  Returns (compiled step, initial state, batch(step) -> a batch, compile
  seconds, FLOPs per iteration (`iteration_flops`), generator module).
  """
  generator, critic = models.build_models(config, num_classes=10)
  mesh = parallel.make_mesh()
  train_step, replicated, batch_sharding = parallel.make_sharded_train_step(
      config, generator, critic, mesh)
  state = jax.device_put(steps.create_train_state(config, generator, critic), replicated)
  size, n = config.data.image_size, num_images
  dataset = jax.device_put(
      np.random.RandomState(0).randint(0, 256, (n, size, size, 3), dtype=np.uint8), replicated)

  def batch(step):
    # This process's share of the global batch, as in training.
    idx = np.random.RandomState(step).randint(
        0, n, (config.n_critic, config.batch_size // jax.process_count()))
    b = parallel.shard_batch({"index": idx, "flip": idx % 2 == 0, "label": idx % 10},
                             batch_sharding)
    b["dataset"] = dataset
    return b

  first = batch(0)
  t = time.perf_counter()
  compiled = train_step.lower(state, first).compile()
  compile_seconds = time.perf_counter() - t
  return compiled, state, batch, compile_seconds, iteration_flops(config, state, first), generator


def xla_flops(computation) -> float:
  """FLOPs in XLA's cost analysis of a lowered or compiled computation (nan if none)."""
  cost = computation.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan"))) if cost else float("nan")


def iteration_flops(config, state, batch) -> float:
  """XLA's count of one iteration's FLOPs (model FLOPs), all devices together.

  Counted on plain XLA convolutions (`conv_impl` "xla", same parameters), so
  that a faster reformulation doing extra work (gemgan.ops.conv's sub-pixel
  form multiplies some zero taps) does not count as useful work. XLA's cost
  analysis counts a while loop's body once, whatever its trip count, so the
  critic's `lax.scan` is unrolled (lowered only, not compiled).
  """
  config = config.copy_and_resolve_references()
  config.model.conv_impl = "xla"
  generator, critic = models.build_models(config, num_classes=10)
  step = jax.jit(steps.make_train_step(config, generator, critic, unroll_critic=True))
  return xla_flops(step.lower(state, batch))


def benchmark_train(config, repeats: int, steps_per_repeat: int, warmup: int) -> dict:
  """Times the jitted training iteration on device-resident random data."""
  compiled, state, batch, compile_seconds, flops, generator = compile_train_step(config)
  t = time.perf_counter()
  state, metrics = _block(compiled(state, batch(0)))
  first_step_seconds = time.perf_counter() - t
  for i in range(warmup):
    state, metrics = _block(compiled(state, batch(i + 1)))

  holder = {"state": state, "i": 0}
  batches = [batch(100 + i) for i in range(4)]

  def one():
    holder["i"] += 1
    holder["state"], m = compiled(holder["state"], batches[holder["i"] % 4])
    _block(m)

  secs = _timed(one, repeats, steps_per_repeat)
  rates = [config.batch_size / s for s in secs]
  return dict(train_images_per_sec=statistics.median(rates), train_images_per_sec_min=min(rates),
              train_images_per_sec_max=max(rates), compile_seconds=compile_seconds,
              first_step_seconds=first_step_seconds, flops_per_iteration=flops,
              achieved_flops_per_sec=flops / statistics.median(secs),
              _g=(generator, holder["state"]))


def benchmark_sampling(config, generator, state, repeats: int) -> float:
  fn = models.generator_apply(generator)
  z = jax.random.normal(jax.random.PRNGKey(0), (config.batch_size, config.model.latent_dim))
  _block(fn(state.ema_params, state.generator.state, z, None))
  secs = _timed(lambda: _block(fn(state.ema_params, state.generator.state, z, None)), repeats, 3)
  return config.batch_size / statistics.median(secs)


def benchmark_input(config, num_batches: int = 20) -> float:
  """Images/s of the tf.data pipeline (host), after one warm-up batch."""
  from gemgan import input_pipeline  # pylint: disable=g-import-not-at-top
  info = input_pipeline.load_dataset(config)
  it = input_pipeline.create_train_iterator(config, info, start_step=0)
  next(it)
  t = time.perf_counter()
  for _ in range(num_batches):
    b = next(it)
  del b
  return num_batches * config.batch_size * config.n_critic / (time.perf_counter() - t)


def run(config, repeats=5, steps_per_repeat=5, warmup=2, measure_input=True) -> dict:
  """All measurements for `config` as a dict (see the module docstring)."""
  config_lib.validate(config, num_devices=jax.device_count())
  peak = matmul_peak_flops(dtype=jnp.dtype(config.precision))
  out = benchmark_train(config, repeats, steps_per_repeat, warmup)
  generator, state = out.pop("_g")
  out["sample_images_per_sec"] = benchmark_sampling(config, generator, state, repeats)
  out["input_images_per_sec"] = benchmark_input(config) if measure_input else None
  out["peak_flops_per_sec"] = peak
  out["mfu"] = out["achieved_flops_per_sec"] / (peak * jax.device_count())
  out.update(model=config.model.name, image_size=config.data.image_size,
             batch_size=config.batch_size, n_critic=config.n_critic,
             precision=config.precision, conv_impl=config.model.conv_impl,
             device=f"{jax.device_count()}x {jax.devices()[0].device_kind}",
             backend=jax.default_backend(), jax_version=jax.__version__)
  return out


def main(argv):
  del argv
  r = run(FLAGS.config, FLAGS.repeats, FLAGS.steps, FLAGS.warmup, FLAGS.input)
  if FLAGS.json:
    print(json.dumps(r))
    return
  print(f"{r['model']} {r['image_size']}px batch {r['batch_size']} n_critic {r['n_critic']} "
        f"{r['precision']} conv={r['conv_impl']} on {r['device']}")
  print(f"  train      {r['train_images_per_sec']:9.1f} img/s  "
        f"(min {r['train_images_per_sec_min']:.1f}, max {r['train_images_per_sec_max']:.1f})")
  print(f"  compile    {r['compile_seconds']:9.1f} s   first step {r['first_step_seconds']:.2f} s")
  print(f"  sample     {r['sample_images_per_sec']:9.1f} img/s")
  if r["input_images_per_sec"] is not None:
    print(f"  input      {r['input_images_per_sec']:9.1f} img/s")
  print(f"  FLOPs/it   {r['flops_per_iteration'] / 1e9:9.2f} G    achieved "
        f"{r['achieved_flops_per_sec'] / 1e9:.1f} GFLOP/s")
  print(f"  peak       {r['peak_flops_per_sec'] / 1e9:9.1f} GFLOP/s ({r['precision']} matmul)  "
        f"MFU {100 * r['mfu']:.1f} %")


if __name__ == "__main__":
  app.run(main)
