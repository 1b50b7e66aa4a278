"""Speed of a config on this machine: `python -m gemgan.benchmark --config=...`.

Prints training images/s (median and min-max over repeats, after warm-up),
compile seconds of the first step, sampling and input-pipeline images/s,
model FLOPs per iteration from XLA's cost analysis (`iteration_flops`), the
achieved FLOP/s and that as a fraction (MFU) of the devices' matmul peak in
the config's compute precision (one device's, the best of a few square
matmul sizes measured in the same run, times the device count).
Images/s counts generator images: batch_size x iterations/s (each iteration
also runs n_critic critic updates; `--config.n_critic` changes it).
Training data are random uint8 images already on the device, so the step is
measured alone; the input pipeline is measured separately.

`--vs_torch` instead times gemgan's iteration against the PyTorch reference
of the same iteration (benchmarks/torch_reference.py, outside the package;
eager, torch.compile, fp32 and bf16) round-robin in one process and prints
the ratios, the CPU's AVX-512/AMX flags and the matmul peaks
(`compare_with_torch`); it needs torch and the repository root on the path:

  python -m gemgan.benchmark --config=configs/dcgan.py --vs_torch --repeats=3 --steps=1

The functions are the library; flags exist only when run as a program.
"""
import functools
import importlib.util
import json
import statistics
import time

from gemgan import cli

cli.hush_native_logs()  # before TensorFlow loads

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


def _block(tree):
  jax.block_until_ready(tree)
  return tree


def matmul_peak_flops(n: int = 4096, dtype=jnp.float32, repeats: int = 5) -> float:
  """Measured FLOP/s of an n x n matmul: the machine's practical peak.

  Accumulates in float32 whatever `dtype`: XLA:CPU runs a bf16 dot with a
  bf16 result on a slow path (no faster than fp32), and one with
  `preferred_element_type=float32` on YNNPACK's bf16 kernels (AMX where the
  CPU has it: 4.1x its fp32 on a quiet Xeon with AMX, experiments/cpu_speed).
  """
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
  f = jax.jit(lambda x: jnp.dot(x, x, preferred_element_type=jnp.float32))
  _block(f(a))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    _block(f(a))
    times.append(time.perf_counter() - t)
  return 2 * n**3 / min(times)


# Square sizes for the peak: XLA:CPU's fp32 dot is fastest at 1-2k (4096 runs
# ~30 % slower, experiments/cpu_speed), its bf16 one (AMX) was measured at 4096;
# accelerators need larger ones.
CPU_PEAK_SIZES = (1024, 2048)
ACCELERATOR_PEAK_SIZES = (4096, 8192)


def peak_flops(dtype=jnp.float32) -> float:
  """The best `matmul_peak_flops` over sizes that suit the backend: MFU's denominator."""
  if jax.default_backend() != "cpu":
    sizes = ACCELERATOR_PEAK_SIZES
  else:
    sizes = CPU_PEAK_SIZES + (() if jnp.dtype(dtype) == jnp.float32 else (4096,))
  return max(matmul_peak_flops(n, dtype) for n in sizes)


def _timed(fn, repeats, steps_per_repeat):
  """Per-repeat seconds per call of `fn` (which blocks)."""
  out = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(steps_per_repeat):
      fn()
    out.append((time.perf_counter() - t) / steps_per_repeat)
  return out


def random_batch(config, dataset, step: int, sharding=None) -> dict:
  """Iteration `step`'s batch: random indices into the device-resident `dataset`.

  This process's share of the global batch, as in training; sharded when
  `sharding` is given.
  """
  idx = np.random.RandomState(step).randint(
      0, dataset.shape[0], (config.n_critic, config.batch_size // jax.process_count()))
  b = {"index": idx, "flip": idx % 2 == 0, "label": idx % 10}
  if sharding is not None:
    b = parallel.shard_batch(b, sharding)
  b["dataset"] = dataset
  return b


def compile_train_step(config, num_images: int = 512, count_flops: bool = True):
  """The sharded, jitted training iteration, compiled, on device-resident
  random uint8 images (the step alone, no input pipeline).

  Returns (compiled step, initial state, batch(step) -> a batch, compile
  seconds, FLOPs per iteration (`iteration_flops`; nan unless `count_flops`),
  generator module).
  """
  generator, critic = models.build_models(config, num_classes=10)
  mesh = parallel.make_mesh()
  train_step, replicated, batch_sharding = parallel.make_sharded_train_step(
      config, generator, critic, mesh)
  state = jax.device_put(steps.create_train_state(config, generator, critic), replicated)
  size, n = config.data.image_size, num_images
  dataset = jax.device_put(
      np.random.RandomState(0).randint(0, 256, (n, size, size, 3), dtype=np.uint8), replicated)

  batch = lambda step: random_batch(config, dataset, step, batch_sharding)
  first = batch(0)
  t = time.perf_counter()
  compiled = train_step.lower(state, first).compile()
  compile_seconds = time.perf_counter() - t
  flops = iteration_flops(config, state, first) if count_flops else float("nan")
  return compiled, state, batch, compile_seconds, flops, generator


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


def _stepper(compiled, state, batches):
  """one() runs one blocking iteration of `compiled`, cycling through
  `batches`; holder["state"] is the latest state (the step donates it)."""
  holder = {"state": state, "i": 0}

  def one():
    holder["i"] += 1
    holder["state"], m = compiled(holder["state"], batches[holder["i"] % len(batches)])
    _block(m)

  return one, holder


def benchmark_train(config, repeats: int, steps_per_repeat: int, warmup: int) -> dict:
  """Times the jitted training iteration on device-resident random data."""
  compiled, state, batch, compile_seconds, flops, generator = compile_train_step(config)
  one, holder = _stepper(compiled, state, [batch(0)])
  first_step_seconds = _timed(one, 1, 1)[0]
  for _ in range(warmup):
    one()
  one, holder = _stepper(compiled, holder["state"], [batch(100 + i) for i in range(4)])
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
  peak = peak_flops(jnp.dtype(config.precision))
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


def cpu_info() -> dict:
  """The CPU's model name and its AVX-512 / AMX flags (Linux /proc/cpuinfo):
  what decides which fast paths XLA and oneDNN can take."""
  model, flags_ = "unknown", []
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
          model = value.strip()
        elif key.strip() == "flags" and not flags_:
          flags_ = sorted(v for v in value.split() if v.startswith(("avx512", "amx")))
  except OSError:
    pass
  return dict(cpu_model=model, cpu_flags=flags_)


class TorchReferenceMissing(RuntimeError):
  """--vs_torch without torch installed, or run from outside the repository."""


def torch_reference():
  """benchmarks.torch_reference, imported only for --vs_torch.

  The PyTorch yardstick is not part of the package (gemgan is JAX only): it
  needs torch (requirements-metrics.txt) and the repository root on the path.
  """
  if importlib.util.find_spec("torch") is None:
    raise TorchReferenceMissing(
        "--vs_torch needs PyTorch: pip install -r requirements-metrics.txt")
  try:
    from benchmarks import torch_reference as ref  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise TorchReferenceMissing(
        "--vs_torch needs benchmarks/torch_reference.py: run it from the repository root "
        f"({e})") from e
  return ref


def _torch_variants(config, precision, torch_compile, memory_format, state):
  """{name: (one-iteration callable, setup seconds)} for the torch reference
  (eager, and compiled unless the step has a gradient penalty), loaded with
  gemgan's initial weights, on random real batches."""
  bt = torch_reference()
  rng = np.random.RandomState(0)
  size, b = config.data.image_size, config.batch_size
  images = rng.uniform(-1, 1, (config.n_critic, b, size, size, 3)).astype(np.float32)
  g, d = state.generator, state.critic
  params = jax.device_get((g.params, g.state, d.params, d.state))
  out = {}
  for name, compiled in (("torch eager", False), ("torch.compile", True)):
    if compiled and not (torch_compile and bt.compilable(config)):
      continue
    it = bt.TorchIteration(config, bf16=precision == "bfloat16", compile=compiled,
                           memory_format=memory_format)
    bt.load_gemgan_variables(it.g, params[0], params[1])
    bt.load_gemgan_variables(it.d, params[2], params[3])
    reals = [it.prepare(x) for x in images]
    step = functools.partial(it.step, reals)
    t = time.perf_counter()
    step()  # warm-up (and torch.compile's compilation)
    out[name] = (step, time.perf_counter() - t)
  return out


def compare_with_torch(config, rounds=3, steps_per_round=1, precisions=("float32",),
                       torch_compile=True, memory_format="channels_last",
                       matmul_n: int = 4096) -> dict:
  """gemgan's training iteration against the PyTorch reference of the same
  iteration (benchmarks/torch_reference.py), every variant built first, then
  timed round-robin in this process (gemgan, torch eager, torch.compile, per
  precision, `steps_per_round` iterations each per round): on a shared
  machine only such interleaved medians compare. torch bf16 is
  `torch.autocast('cpu', bfloat16)`, gemgan's is `precision=bfloat16`.
  Model FLOPs per iteration are XLA's count (`iteration_flops`, fp32 config),
  the same work for both; matmul peaks are of `matmul_n`-square matmuls.
  """
  bt = torch_reference()
  config_lib.validate(config, num_devices=jax.device_count())
  variants = {}  # (precision, name) -> [step, setup seconds, per-iteration seconds]
  flops_per_iteration = None
  for precision in precisions:
    c = config.copy_and_resolve_references()
    c.precision = precision
    compiled, state, batch, compile_seconds, flops, _ = compile_train_step(
        c, count_flops=flops_per_iteration is None)
    flops_per_iteration = flops_per_iteration or flops
    torch_steps = _torch_variants(c, precision, torch_compile, memory_format, state)
    one, _ = _stepper(compiled, state, [batch(100 + i) for i in range(2)])
    t = time.perf_counter()
    one()  # the slow first iteration
    variants[(precision, "gemgan")] = [one, compile_seconds + time.perf_counter() - t, []]
    for name, (step, setup) in torch_steps.items():
      variants[(precision, name)] = [step, setup, []]
  for _ in range(rounds):
    for v in variants.values():
      v[2].append(_timed(v[0], 1, steps_per_round)[0])
  rows = []
  for (precision, name), (_, setup, secs) in variants.items():
    gemgan_secs = statistics.median(variants[(precision, "gemgan")][2])
    rows.append(dict(precision=precision, impl=name, setup_seconds=setup,
                     images_per_sec=config.batch_size / statistics.median(secs),
                     achieved_gflops=flops_per_iteration / statistics.median(secs) / 1e9,
                     gemgan_ratio=statistics.median(secs) / gemgan_secs))
  peaks = {f"{lib}_{p}": f(matmul_n, p) / 1e9 for p in precisions
           for lib, f in (("jax", lambda n, p: matmul_peak_flops(n, jnp.dtype(p))),
                          ("torch", bt.matmul_peak_flops))}
  torch = bt._torch()  # pylint: disable=protected-access
  return dict(rows=rows, matmul_peak_gflops=peaks, flops_per_iteration=flops_per_iteration,
              model=config.model.name,
              image_size=config.data.image_size, batch_size=config.batch_size,
              width=config.model.width, n_critic=config.n_critic, rounds=rounds,
              steps_per_round=steps_per_round, memory_format=memory_format,
              jax_version=jax.__version__, torch_version=torch.__version__,
              torch_threads=torch.get_num_threads(), **cpu_info())


def format_comparison(r: dict) -> str:
  """`compare_with_torch`'s result as a table; ratio = gemgan img/s / theirs."""
  lines = [f"{r['model']} {r['image_size']}px width {r['width']} batch {r['batch_size']} "
           f"n_critic {r['n_critic']}: median of {r['rounds']} interleaved rounds x "
           f"{r['steps_per_round']} iterations, "
           f"{r['flops_per_iteration'] / 1e9:.1f} GFLOP/iteration (XLA's count)",
           f"CPU {r['cpu_model']}; flags {' '.join(r['cpu_flags']) or '(no avx512/amx)'}",
           f"jax {r['jax_version']}, torch {r['torch_version']} ({r['torch_threads']} threads, "
           f"{r['memory_format']}); matmul peak GFLOP/s: " +
           ", ".join(f"{k} {v:.0f}" for k, v in r["matmul_peak_gflops"].items()),
           f"{'precision':<10} {'impl':<14} {'img/s':>8} {'gemgan/this':>12} {'GFLOP/s':>8} "
           f"{'setup s':>8}"]
  for row in r["rows"]:
    lines.append(f"{row['precision']:<10} {row['impl']:<14} {row['images_per_sec']:8.2f} "
                 f"{row['gemgan_ratio']:11.2f}x {row['achieved_gflops']:8.1f} "
                 f"{row['setup_seconds']:8.1f}")
  return "\n".join(lines)


def format_report(r: dict) -> str:
  """`run`'s result as the command line's table."""
  lines = [
      f"{r['model']} {r['image_size']}px batch {r['batch_size']} n_critic {r['n_critic']} "
      f"{r['precision']} conv={r['conv_impl']} on {r['device']}",
      f"  train      {r['train_images_per_sec']:9.1f} img/s  "
      f"(min {r['train_images_per_sec_min']:.1f}, max {r['train_images_per_sec_max']:.1f})",
      f"  compile    {r['compile_seconds']:9.1f} s   first step {r['first_step_seconds']:.2f} s",
      f"  sample     {r['sample_images_per_sec']:9.1f} img/s"]
  if r["input_images_per_sec"] is not None:
    lines.append(f"  input      {r['input_images_per_sec']:9.1f} img/s")
  lines += [f"  FLOPs/it   {r['flops_per_iteration'] / 1e9:9.2f} G    achieved "
            f"{r['achieved_flops_per_sec'] / 1e9:.1f} GFLOP/s",
            f"  peak       {r['peak_flops_per_sec'] / 1e9:9.1f} GFLOP/s ({r['precision']} matmul)  "
            f"MFU {100 * r['mfu']:.1f} %"]
  return "\n".join(lines)


def _define_flags():
  """The command line's flags (defined only when run as a program)."""
  config_flags.DEFINE_config_file("config", None, "Training config file (and :preset).")
  flags.DEFINE_integer("repeats", 5, "Timed repeats (each of --steps iterations); with "
                       "--vs_torch, the round-robin rounds.")
  flags.DEFINE_integer("steps", 5, "Iterations per timed repeat (per variant and round).")
  flags.DEFINE_integer("warmup", 2, "Untimed iterations after compiling.")
  flags.DEFINE_bool("input", True, "Also time the tf.data input pipeline (prepares the data).")
  flags.DEFINE_bool("json", False, "Print one JSON object instead of a table.")
  flags.DEFINE_bool("vs_torch", False, "Instead: gemgan against the PyTorch reference of the "
                    "same iteration (benchmarks/torch_reference.py), interleaved in one process.")
  flags.DEFINE_list("precisions", ["float32"], "With --vs_torch. Add bfloat16 only on a CPU "
                    "with bf16 matmuls (AMX, avx512_bf16): elsewhere torch emulates them and its "
                    "4096^2 peak matmul alone takes over 10 minutes.")
  flags.DEFINE_bool("torch_compile", True, "With --vs_torch: also torch.compile (not with a "
                    "gradient penalty: torch.compile has no double backward).")
  flags.DEFINE_enum("memory_format", "channels_last", ["channels_last", "contiguous"],
                    "With --vs_torch: torch's tensor layout.")
  cli.define_flags()
  flags.mark_flags_as_required(["config"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.setup_logging(FLAGS.verbose)
  with cli.failing_clearly(config_lib.ConfigError, TorchReferenceMissing, ValueError):
    if FLAGS.vs_torch:
      r = compare_with_torch(FLAGS.config, FLAGS.repeats, FLAGS.steps, FLAGS.precisions,
                             FLAGS.torch_compile, FLAGS.memory_format)
      print(json.dumps(r) if FLAGS.json else format_comparison(r))
      return
    r = run(FLAGS.config, FLAGS.repeats, FLAGS.steps, FLAGS.warmup, FLAGS.input)
  print(json.dumps(r) if FLAGS.json else format_report(r))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
