"""The training loop: data in, jitted iterations, logs, samples, checkpoints.

`train_and_evaluate(config, workdir)` writes into `workdir`:
  trainer.lock            who trains here (host, PID, start): one trainer per workdir
  checkpoints/            Orbax, whole state, every checkpoint_every_steps (and
                          checkpoint_every_minutes), each sealed with checksums
  checkpoints_best/       the checkpoint of the best config.best_metric (evaluators on)
  config.json             the config used
  metrics.jsonl           one JSON record per log step (losses, kimg, img/s), and
                          per sample and evaluation step
  samples/step_<N>.png    fixed-z sample grid every sample_every_steps
  curves.png              loss curves, rewritten at every sample step and at the end
  tensorboard/            scalars and sample images
Rerunning the same command with the same workdir resumes from the newest
intact checkpoint. The console shows one line per log step (gemgan.console),
every log_every_steps or log_every_secs, whichever comes first.

At most `config.max_steps_in_flight` iterations are dispatched ahead of the
device: the loop waits for step s - k before dispatching step s, so the step
it saves on a signal is at most k - 1 iterations past the one running when
the signal came, and the rate and ETA count finished work.
"""
import collections
import contextlib
import json
import os
import signal
import time
from typing import NamedTuple

from absl import logging
from clu import metric_writers
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np

from gemgan import checkpointing
from gemgan import config_lib
from gemgan import console
from gemgan import growing
from gemgan import input_pipeline
from gemgan import losses
from gemgan import models
from gemgan import monitors
from gemgan import parallel
from gemgan import steps
from gemgan import visualize
from gemgan import workdir_lock


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


class _JsonlWriter(metric_writers.MetricWriter):
  """CLU writer of metrics.jsonl: the curves, experiments/ and other tools read it."""

  def __init__(self, path: str):
    self.path = path

  def write_scalars(self, step, scalars):
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), **{k: float(v) for k, v in scalars.items()}})
              + "\n")

  def write_summaries(self, step, values, metadata=None):
    pass

  def write_images(self, step, images):
    pass

  def write_videos(self, step, videos):
    pass

  def write_audios(self, step, audios, *, sample_rate):
    pass

  def write_texts(self, step, texts):
    pass

  def write_histograms(self, step, arrays, num_buckets=None):
    pass

  def write_hparams(self, hparams):
    pass

  def flush(self):
    pass

  def close(self):
    pass


class _Logs:
  """CLU writers of metrics.jsonl and TensorBoard; only process 0 writes files.

  One record a step: what the step logs (losses, rates, sample diversity,
  evaluations) is gathered and written by `end_step`. The console is not
  here: it is gemgan.console's tick line.
  """

  def __init__(self, workdir: str, is_main: bool):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.files = metric_writers.MultiWriter(
        [_JsonlWriter(self.path), metric_writers.SummaryWriter(os.path.join(workdir,
                                                                            "tensorboard"))]
        if is_main else [])
    self.step, self.record = None, {}

  def scalars(self, step: int, values: dict, console: bool = False):
    """Adds `values` to `step`'s record; `console` is accepted and unused."""
    del console
    if step != self.step:
      self.end_step()
    self.step = step
    self.record.update({k: float(v) for k, v in values.items()})

  def end_step(self):
    """Writes the step's record, if it has one."""
    if self.record:
      self.files.write_scalars(self.step, self.record)
      self.files.flush()
    self.record = {}

  def image(self, step: int, name: str, image: np.ndarray):
    self.files.write_images(step, {name: image})
    self.files.flush()

  def close(self):
    self.end_step()
    self.files.close()


class _Decision(NamedTuple):
  log: bool
  save: bool
  stop: bool


class _Schedule:
  """When to log and save and whether to stop, agreed by every process.

  Logs every log_every_steps, when the tick line is due by time and before
  every save (a non-finite state is never saved). Saves every
  checkpoint_every_steps, every checkpoint_every_minutes (0: not by time), at
  the last step and on a signal. Not CLU's PeriodicCallback: a clock or a
  signal on one process must make every process log or save (both are
  collective).
  """

  def __init__(self, config):
    self.every_steps, self.last_step = config.checkpoint_every_steps, config.num_train_steps
    self.log_every_steps = config.log_every_steps
    self.every_secs = 60.0 * config.checkpoint_every_minutes
    self.saved()

  def saved(self):
    self.last_save = time.monotonic()

  def __call__(self, step: int, signum, tick_due: bool) -> _Decision:
    """What to do after `step`; reads the clocks and the signal once."""
    by_time = self.every_secs > 0 and time.monotonic() - self.last_save >= self.every_secs
    flags = np.array([by_time, signum is not None, tick_due])
    if jax.process_count() > 1:
      flags = multihost_utils.process_allgather(flags).any(axis=0)
    stop = bool(flags[1])
    save = stop or bool(flags[0]) or step % self.every_steps == 0 or step == self.last_step
    log = save or bool(flags[2]) or step % self.log_every_steps == 0
    return _Decision(log, save, stop)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> steps.TrainState:
  """Trains (or resumes) a GAN as `config` says, writing into `workdir`.

  The workdir's lock is taken before anything else is written there: a
  second trainer on a live workdir is refused (workdir_lock.WorkdirLocked).
  """
  config_lib.validate(config, num_devices=jax.device_count())
  os.makedirs(workdir, exist_ok=True)
  lock = (workdir_lock.WorkdirLock(workdir) if jax.process_index() == 0
          else contextlib.nullcontext())
  with lock:
    return _train(config, workdir)


def _train(config, workdir):
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"), config.max_to_keep)
  try:
    resume_step = ckpt.newest_intact_step()
    if resume_step is not None:  # refuse a changed model before spending time on data and init
      ckpt.check_compatible(config, resume_step)
    run = _Run(config, workdir, ckpt)
    state = run.initial_state(resume_step is not None)
    return _loop(run, state)
  finally:
    ckpt.close()


class _Run:
  """What the loop works with: data, networks, the sharded step, logs, evaluator."""

  def __init__(self, config, workdir, ckpt):
    self.config, self.workdir, self.ckpt = config, workdir, ckpt
    self.began = time.monotonic()
    self.is_main = jax.process_index() == 0
    with console.libraries_hushed():  # TFDS's "Downloading and preparing" and progress bars
      self.info = info = input_pipeline.load_dataset(config)
    self.num_classes = info.num_classes if config.model.conditional else 0
    # Lets gemgan.sample name classes without the data set.
    self.meta = {"num_classes": info.num_classes, "class_names": list(info.class_names)}
    self.generator, self.critic = models.build_models(config, num_classes=info.num_classes)
    mesh = parallel.make_mesh()
    self.train_step, self.replicated, self.batch_sharding = parallel.make_sharded_train_step(
        config, self.generator, self.critic, mesh)
    # A growing run's first phase (gemgan.growing) has its own, cheaper iteration.
    self.low_resolution_step = parallel.make_sharded_train_step(
        config, self.generator, self.critic, mesh, low_resolution=True)[0] \
        if config.grow.size else None
    self.logs = _Logs(workdir, self.is_main)
    self.ticker = console.Ticker(config)
    self.last_samples = None  # path of the newest sample grid
    self.warn = _AlarmLog()
    self.grid = fixed_latents(config, config.num_sample_grid, self.num_classes)
    self.sample_fn = models.generator_apply(self.generator)
    self.evaluators = _make_evaluators(config, info)
    self.best = _BestCheckpoint(workdir, config) if config.best_metric and self.evaluators \
        else None
    self.resumed_from = None

  def initial_state(self, resuming: bool) -> steps.TrainState:
    """A fresh state, or the newest intact checkpoint's; placed on the devices."""
    if self.is_main:
      logging.info("Initialising the networks...")
    start = time.monotonic()
    state = steps.create_train_state(self.config, self.generator, self.critic)
    if self.is_main:
      count = lambda tree: sum(x.size for x in jax.tree_util.tree_leaves(tree))
      logging.info("Generator %s parameters, critic %s (initialised in %.1f s)",
                   console.format_count(count(state.generator.params)),
                   console.format_count(count(state.critic.params)), time.monotonic() - start)
    if resuming:
      state = self.ckpt.restore_newest_intact(state, self.config)
      self.resumed_from = int(state.step)
      logging.info("Resumed from step %d in %s", self.resumed_from, self.ckpt.directory)
    elif self.is_main:
      with open(os.path.join(self.workdir, "config.json"), "w") as f:
        f.write(self.config.to_json_best_effort(indent=2))
    self._make_batches(int(state.step))
    return jax.device_put(state, self.replicated)

  def _make_batches(self, start_step: int):
    config, info = self.config, self.info
    if config.data.on_device and info.images is not None:
      # Small sets live on the device; batches are gathered inside the step.
      self._dataset = jax.device_put(info.images, self.replicated)
      self._labels = np.asarray(info.labels)
      self._batches = None
      logging.info("Dataset on device: %d images, %.1f MB", info.num_examples,
                   info.images.nbytes / 1e6)
    else:
      self._batches = input_pipeline.create_train_iterator(config, info, start_step=start_step)

  def next_batch(self, step: int):
    if self._batches is not None:
      return parallel.shard_batch(next(self._batches), self.batch_sharding)
    idx, flip = input_pipeline.process_batch_indices(self.config, step, self.info.num_examples)
    b = parallel.shard_batch({"index": idx, "flip": flip, "label": self._labels[idx]},
                             self.batch_sharding)
    b["dataset"] = self._dataset
    return b

  def step_fn(self, step: int):
    """The jitted iteration for `step`: a growing run's low-resolution one before it grows."""
    if self.low_resolution_step is None:
      return self.train_step
    grows_at = growing.first_full_step(self.config)
    if step < grows_at:
      return self.low_resolution_step
    if step == grows_at and self.is_main:
      logging.info("Growing G from %d to %d px at step %d (%.0f kimg): compiling the "
                   "full-size iteration...", self.config.grow.size,
                   self.config.data.image_size, step, self.config.grow.kimg)
    return self.train_step

  def write_samples(self, step, state):
    z, labels = self.grid
    images = visualize.to_uint8(self.sample_fn(state.ema_params, state.generator.state, z,
                                                labels))
    grid = visualize.image_grid(images)
    if self.is_main:
      self.last_samples = os.path.join(self.workdir, "samples", f"step_{step}.png")
      visualize.save_png(self.last_samples, grid)
      self.logs.image(step, "samples", grid[None])
    diversity = float(monitors.sample_diversity(visualize.from_uint8(images)))
    self.logs.scalars(step, {"sample_diversity": diversity}, console=False)
    self.warn(monitors.check_alarms({"step": step, "sample_diversity": diversity}, None,
                                    self.config.monitor.collapse_threshold), "collapse")

  def plot_curves(self):
    if self.is_main:
      visualize.plot_curves(visualize.read_jsonl(self.logs.path),
                            os.path.join(self.workdir, "curves.png"))

  def check_and_log(self, step: int, pending: list) -> None:
    """Logs the means of `pending` metrics; raises TrainingDiverged if one is not finite."""
    means = jax.device_get(jax.tree_util.tree_map(lambda *x: jnp.mean(jnp.stack(x)), *pending))
    since = step - len(pending)
    pending.clear()
    bad = [k for k, v in means.items() if not np.isfinite(v)]
    if bad:
      raise TrainingDiverged(self._diverged_message(bad, step, since))
    tick = self.ticker.tick(step)
    self.logs.scalars(step, {**means, **{k: v for k, v in tick.items()
                                         if k in ("kimg", "img_per_sec")}})
    if self.is_main:
      logging.info("%s", self.ticker.line(tick, means))
    overfit = (self.config.monitor.overfit_threshold
               if losses.LOSSES[self.config.loss].zero_is_boundary else None)
    self.warn(monitors.check_alarms({"step": step, **means}, overfit, None), "overfit")

  def _diverged_message(self, bad, step, since) -> str:
    # The state before this step's donation is gone; the last saved
    # checkpoint is the last good one and is left as it was.
    latest = self.ckpt.latest_step()
    message = (f"non-finite {', '.join(bad)} by step {step} (averaged since step {since}); "
               f"training stopped. The latest checkpoint (step {latest}) in "
               f"{self.ckpt.directory} is untouched.")
    if self.resumed_from is not None and latest == self.resumed_from:
      n = step - self.resumed_from
      message += (f" This run diverged {n} step{'s' * (n != 1)} after resuming from "
                  f"step {self.resumed_from}, so rerunning will diverge again: resume from an "
                  "earlier checkpoint (move the later ones out of that folder) or change "
                  "the config (e.g. learning rates).")
    return message


def _loop(run: _Run, state: steps.TrainState) -> steps.TrainState:
  """Iterations with at most max_steps_in_flight dispatched ahead of the device."""
  config = run.config
  step = start_step = int(state.step)
  if start_step >= config.num_train_steps:
    logging.info("Nothing to do: step %d >= num_train_steps %d", start_step,
                 config.num_train_steps)
    return state
  if run.is_main:
    _log_start(run, start_step)
  schedule = _Schedule(config)
  in_flight = collections.deque()  # metrics of steps dispatched, not yet waited for
  pending = []  # device metrics since the last log, fetched only when logging
  with _StopRequest() as stop:
    while step < config.num_train_steps:
      state, metrics = _iteration(run, state, step, first=step == start_step)
      step += 1
      in_flight.append(metrics)
      pending.append(metrics)
      while len(in_flight) >= config.max_steps_in_flight:
        jax.block_until_ready(in_flight.popleft())
      decision = schedule(step, stop.signum, run.ticker.due())
      _after_step(run, step, state, pending, decision)
      if decision.save:
        schedule.saved()
      if decision.stop:
        logging.warning("Signal %d: saved step %d, exiting cleanly. Rerun the same command "
                        "to resume.", stop.signum, step)
        break
  run.plot_curves()
  run.logs.close()
  if run.best is not None:
    run.best.ckpt.close()
  if run.is_main:
    _log_end(run, step, time.monotonic() - run.began)
  return state


def _iteration(run: _Run, state, step: int, first: bool):
  """Dispatches iteration `step`; the first one is compiled, timed and waited for
  (the tick line's clock starts when it has finished)."""
  batch, train_step = run.next_batch(step), run.step_fn(step)
  if not first:
    return train_step(state, batch)
  if run.is_main:
    logging.info("Compiling the iteration...")
  start = time.monotonic()
  state, metrics = train_step(state, batch)  # returns once compiled and dispatched
  compiled = time.monotonic()
  jax.block_until_ready(metrics)
  if run.is_main:
    logging.info("Compiled the iteration in %.1f s; it ran in %.2f s", compiled - start,
                 time.monotonic() - compiled)
  run.ticker.started(step + 1)
  return state, metrics


def _log_start(run: _Run, start_step: int) -> None:
  config = run.config
  logging.info("Training %s at %d px%s: %g kimg = %d iterations of batch %d x %d critic "
               "step(s), from step %d, on %d %s device(s)%s", config.model.name,
               config.data.image_size, ", resumed" if start_step else "",
               run.ticker.total_kimg, config.num_train_steps,
               config.batch_size, config.n_critic, start_step, jax.device_count(),
               jax.default_backend(), f", {config.max_steps_in_flight} iterations in flight"
               if config.max_steps_in_flight > 1 else "")


def _log_end(run: _Run, step: int, seconds: float) -> None:
  """The closing line: how far, how long, where the checkpoint and samples are."""
  latest = run.ckpt.latest_step()
  logging.info("%s at kimg %.1f (step %d) after %s; last checkpoint: %s; samples: %s",
               "Finished" if step >= run.config.num_train_steps else "Stopped",
               step * run.ticker.images_per_step / 1000, step, console.format_duration(seconds),
               run.ckpt.step_dir(latest) if latest is not None else "none",
               run.last_samples or os.path.join(run.workdir, "samples"))


def _after_step(run: _Run, step: int, state, pending: list, decision: _Decision) -> None:
  """Logging (metrics are checked before every save), samples, evaluation, checkpoint."""
  config, last, saving = run.config, step == run.config.num_train_steps, decision.save
  if decision.log:
    run.check_and_log(step, pending)
  sampling = step % config.sample_every_steps == 0 or last
  if sampling:
    run.write_samples(step, state)
  for ev, every in run.evaluators:
    if step % every == 0 or last:
      metrics = ev.run(step, state, run.logs, run.sample_fn)
      if run.best is not None:
        run.best.consider(ev.name, metrics, state)
  run.logs.end_step()
  if sampling:
    run.plot_curves()  # with this step's record
  if saving:
    run.ckpt.save(state, config, extra=run.meta)


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


def _make_evaluators(config, info) -> list:
  """(evaluator, every_steps) for each of `config.evaluators`; kimg -> steps here."""
  from gemgan import evaluation  # pylint: disable=g-import-not-at-top
  images_per_step = config.batch_size * config.n_critic  # real images the critic sees
  return [(ev, max(1, round(config.evaluators[ev.name].every_kimg * 1000 / images_per_step)))
          for ev in evaluation.evaluators_for_config(config, info)]


class _BestCheckpoint:
  """The loop's best-checkpoint policy: `checkpoints_best/` holds the state of the
  lowest `config.best_metric` so far; its meta records the value, so a resumed run
  knows the best to beat."""

  def __init__(self, workdir: str, config):
    self.config = config
    self.evaluator, _, self.metric = config.best_metric.partition("/")
    self.ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints_best"),
                                           max_to_keep=1)
    self.value = float("inf")
    if self.ckpt.latest_step() is not None:
      self.value = float(self.ckpt.read_meta().get(config.best_metric, float("inf")))

  def consider(self, evaluator: str, metrics: dict, state) -> bool:
    """Saves `state` if `metrics` (of `evaluator`) beat the best; says whether it did."""
    if evaluator != self.evaluator or not metrics[self.metric] < self.value:
      return False
    self.value = float(metrics[self.metric])
    self.ckpt.save(state, self.config, extra={self.config.best_metric: self.value})
    logging.info("New best %s %.4g: saved to %s", self.config.best_metric, self.value,
                 self.ckpt.directory)
    return True
