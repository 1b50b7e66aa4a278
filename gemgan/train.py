"""The training loop: data in, jitted iterations, logs, samples, checkpoints.

`train_and_evaluate(config, workdir)` writes into `workdir`:
  checkpoints/            Orbax, whole state, every checkpoint_every_steps
  checkpoints_best/       the best-FID checkpoint (when evaluation is on)
  config.json             the config used
  metrics.jsonl           one JSON record per log/eval step
  samples/step_<N>.png    fixed-z sample grid every sample_every_steps
  curves.png              loss curves, rewritten at every sample step and at the end
  tensorboard/            scalars and sample images
Rerunning the same command with the same workdir resumes from the latest
complete checkpoint.
"""
import json
import os
import signal
import time
from typing import Optional

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gemgan import checkpointing
from gemgan import config_lib
from gemgan import input_pipeline
from gemgan import models
from gemgan import monitors
from gemgan import parallel
from gemgan import steps
from gemgan import visualize


class TrainingDiverged(RuntimeError):
  """A non-finite loss: training stopped, the last good checkpoint is kept."""


class _StopRequest:
  """Turns SIGTERM/SIGINT into a flag the loop checks between iterations."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: leave signals alone
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    self.signum = signum

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def fixed_latents(config, num: int, num_classes: int):
  """The z (and labels) of the sample grid, fixed for the whole run."""
  z = steps.sample_latent(jax.random.PRNGKey(config.seed + 1), num, config.model.latent_dim,
                          config.latent_dist)
  labels = jnp.arange(num, dtype=jnp.int32) % max(num_classes, 1)
  return z, labels


class _Logger:
  """metrics.jsonl, TensorBoard and the console line with rate and ETA."""

  def __init__(self, workdir: str, total_steps: int, batch_size: int, is_main: bool):
    self.is_main = is_main
    self.total, self.batch = total_steps, batch_size
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.tb = None
    if is_main:
      from flax.metrics import tensorboard  # pylint: disable=g-import-not-at-top
      self.tb = tensorboard.SummaryWriter(os.path.join(workdir, "tensorboard"))
    self._t0, self._s0 = time.time(), None

  def start(self, step: int):
    self._t0, self._s0 = time.time(), step

  def scalars(self, step: int, values: dict, console: bool = True):
    values = {k: float(v) for k, v in values.items()}
    if not self.is_main:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": step, **values}) + "\n")
    for k, v in values.items():
      self.tb.scalar(k, v, step)
    self.tb.flush()
    if console:
      elapsed = time.time() - self._t0
      done = step - self._s0
      rate = done / elapsed if elapsed > 0 and done > 0 else 0.0
      eta = (self.total - step) / rate if rate else float("nan")
      shown = " ".join(f"{k}={values[k]:.4g}" for k in (
          "d_loss", "g_loss", "wasserstein", "gradient_penalty", "d_real", "d_fake")
                       if k in values)
      logging.info("step %d/%d  %s  %.1f img/s  %.2f it/s  ETA %s", step, self.total, shown,
                   rate * self.batch, rate, _fmt_time(eta))

  def image(self, step: int, name: str, image: np.ndarray):
    if self.is_main:
      self.tb.image(name, image, step)
      self.tb.flush()


def _fmt_time(seconds: float) -> str:
  if not np.isfinite(seconds):
    return "?"
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h}:{m:02d}:{s:02d}"


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> steps.TrainState:
  """Trains (or resumes) a GAN as `config` says, writing into `workdir`."""
  config_lib.validate(config, num_devices=jax.device_count())
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)

  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"), config.max_to_keep)
  resuming = ckpt.latest_step() is not None
  if resuming:  # refuse a changed model before spending time on data and init
    ckpt.check_compatible(config)

  info = input_pipeline.load_dataset(config)
  num_classes = info.num_classes if config.model.conditional else 0
  # Lets gemgan.sample name classes without the data set.
  meta = {"num_classes": info.num_classes, "class_names": list(info.class_names)}
  generator, critic = models.build_models(config, num_classes=info.num_classes)
  state = steps.create_train_state(config, generator, critic)

  if resuming:
    state = ckpt.restore(state)
    logging.info("Resumed from step %d in %s", int(state.step), ckpt.directory)
  elif is_main:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
  start_step = int(state.step)

  train_step, replicated, batch_sharding = parallel.make_sharded_train_step(
      config, generator, critic, parallel.make_mesh())
  state = jax.device_put(state, replicated)

  on_device = config.data.on_device and info.images is not None
  if on_device:
    # Small sets live on the device; batches are gathered inside the step.
    dataset_u8 = jax.device_put(info.images, replicated)
    labels_all = np.asarray(info.labels)
    logging.info("Dataset on device: %d images, %.1f MB", info.num_examples,
                 info.images.nbytes / 1e6)
  else:
    batches = input_pipeline.create_train_iterator(config, info, start_step=start_step)

  def next_batch(step):
    if on_device:
      idx, flip = input_pipeline.process_batch_indices(config, step, info.num_examples)
      b = parallel.shard_batch({"index": idx, "flip": flip, "label": labels_all[idx]},
                               batch_sharding)
      b["dataset"] = dataset_u8
      return b
    return parallel.shard_batch(next(batches), batch_sharding)

  warn = _AlarmLog()
  grid_z, grid_labels = fixed_latents(config, config.num_sample_grid, num_classes)
  sample_fn = models.generator_apply(generator)
  logger = _Logger(workdir, config.num_train_steps, config.batch_size, is_main)
  evaluator = _make_evaluator(config, info, workdir) if config.eval_every_steps else None

  def write_samples(step, state):
    images = visualize.to_uint8(sample_fn(state.ema_params, state.generator.state, grid_z, grid_labels))
    grid = visualize.image_grid(images)
    if is_main:
      visualize.save_png(os.path.join(workdir, "samples", f"step_{step}.png"), grid)
      logger.image(step, "samples", grid[None])
      visualize.plot_curves(visualize.read_jsonl(logger.path), os.path.join(workdir,
                                                                            "curves.png"))
    diversity = float(monitors.sample_diversity(visualize.from_uint8(images)))
    logger.scalars(step, {"sample_diversity": diversity}, console=False)
    warn(monitors.check_alarms({"step": step, "sample_diversity": diversity}, None,
                               config.monitor.collapse_threshold), "collapse")

  if start_step >= config.num_train_steps:
    logging.info("Nothing to do: step %d >= num_train_steps %d", start_step,
                 config.num_train_steps)
    return state
  logging.info("Training %s from step %d to %d on %d device(s), global batch %d",
               config.model.name, start_step, config.num_train_steps, jax.device_count(),
               config.batch_size)

  # r_t needs a critic whose zero means "undecided" (BCE, hinge).
  overfit_threshold = (None if config.loss == "wasserstein"
                       else config.monitor.overfit_threshold)
  pending = []  # device metrics since the last log, fetched only when logging
  with _StopRequest() as stop:
    logger.start(start_step)
    step = start_step
    while step < config.num_train_steps:
      new_state, metrics = train_step(state, next_batch(step))
      step += 1
      pending.append(metrics)
      last = step == config.num_train_steps
      # Read the signal flag once: one arriving later in this iteration is
      # handled (saved) after the next step, never skipped.
      stopping = stop.signum
      saving = step % config.checkpoint_every_steps == 0 or last or stopping
      # Metrics are checked before every save, so a NaN state is never saved.
      if step % config.log_every_steps == 0 or saving:
        means_steps = list(pending)
        means = jax.device_get(jax.tree_util.tree_map(lambda *x: jnp.mean(jnp.stack(x)),
                                                      *pending))
        pending.clear()
        bad = [k for k, v in means.items() if not np.isfinite(v)]
        if bad:
          # `state` (before this step's donation) is gone; the last saved
          # checkpoint is the last good one and is left as it was.
          ckpt.close()
          raise TrainingDiverged(
              f"non-finite {', '.join(bad)} by step {step} (averaged since step "
              f"{step - len(means_steps)}); training stopped. The latest checkpoint "
              f"(step {ckpt.latest_step()}) in {ckpt.directory} is untouched.")
        logger.scalars(step, means)
        warn(monitors.check_alarms({"step": step, **means}, overfit_threshold, None),
             "overfit")
      state = new_state
      if step % config.sample_every_steps == 0 or last:
        write_samples(step, state)
      if evaluator is not None and (step % config.eval_every_steps == 0 or last):
        evaluator.run(step, state, logger, sample_fn)
      if saving:
        ckpt.save(state, config, extra=meta)
      if stopping:
        logging.warning("Signal %d: saved step %d, exiting cleanly. Rerun the same command "
                        "to resume.", stopping, step)
        break
  ckpt.close()
  if is_main:
    visualize.plot_curves(visualize.read_jsonl(logger.path), os.path.join(workdir, "curves.png"))
  return state


class _AlarmLog:
  """Warns when an alarm starts, not at every log step while it lasts."""

  def __init__(self):
    self.firing = {}

  def __call__(self, messages, group: str):
    if messages and not self.firing.get(group):
      for m in messages:
        logging.warning("%s (not repeated until it clears)", m)
    elif not messages and self.firing.get(group):
      logging.info("%s alarm cleared", group)
    self.firing[group] = bool(messages)


def _make_evaluator(config, info, workdir):
  """Evaluation during training (FID/KID), with the best checkpoint kept apart."""
  from gemgan import evaluate  # pylint: disable=g-import-not-at-top
  return evaluate.TrainingEvaluator(config, info, workdir)
