"""Shared config defaults and up-front validation.

Config files in `configs/` start from `base_config(<model name>)` (the shared
keys and that architecture's own, gemgan/models/) and change what their recipe
needs; `validate(config)` runs before anything is built, so a bad value
fails in the first second with a message that names the key.
"""
import os

import ml_collections
from ml_collections import config_dict

from gemgan import ada
from gemgan import augment
from gemgan import config_checks
from gemgan import growing
from gemgan import losses
from gemgan import models

MODEL_NAMES = tuple(models.ARCHITECTURES)
LOSSES = tuple(losses.LOSSES)
CRITIC_NORMS = ("none", "batch", "layer", "spectral")
LATENT_DISTS = ("normal", "uniform")
RESIZE_METHODS = ("center_crop", "pad")
PRECISIONS = ("float32", "bfloat16")
CONV_IMPLS = ("auto", "xla", "fast")
UPSAMPLE_FACTOR = 16  # four stride-2 layers after the first KxK map


def base_config(model: str = "wgan_gp") -> ml_collections.ConfigDict:
  """Defaults shared by every recipe, with `model`'s architecture; configs override what differs."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 64  # global batch, split over all devices
  # Training length in real images shown to the critic (thousands), StyleGAN's unit;
  # num_train_steps (iterations) follows batch_size and n_critic unless set itself.
  c.num_train_kimg = 6_400.0
  c.log_every_steps = 100
  # Also a log line (and metrics.jsonl record) once this many seconds passed
  # since the last (0: by steps only): 100 steps at 96 px on a CPU are 30 min.
  c.log_every_secs = 60.0
  c.sample_every_steps = 1_000
  c.checkpoint_every_steps = 2_000
  # Also by time (0 disables): steps mean different times on different machines.
  c.checkpoint_every_minutes = 30.0
  # Iterations dispatched ahead of the device. 1 waits for each step before
  # the next: a signal saves within one iteration plus the save (a 96 px
  # WGAN-GP iteration is ~22 s on 2 quiet cores, so 2 could not meet a 30 s
  # preemption notice). 2+ overlaps the host's batch and dispatch with the
  # running step: for GPUs with millisecond iterations. On CPU no cost of 1
  # was measurable (quick preset, see the commit).
  c.max_steps_in_flight = 1
  # Evaluation during training, big_vision style: name -> {type, every_kimg,
  # num_samples, ...} (gemgan/evaluators/<type>.py). fid2k (add_fid_evaluator) is
  # declared but off (every_kimg 0): --config.evaluators.fid2k.every_kimg=100 turns it on.
  c.evaluators = ml_collections.ConfigDict()
  c.best_metric = ""  # "<evaluator>/<metric>", lower is better: keep checkpoints_best by it
  add_fid_evaluator(c, 2_000, every_kimg=0.0)
  c.max_to_keep = 3
  c.num_sample_grid = 64  # fixed-z grid written every sample_every_steps
  c.precision = "float32"
  c.data = _data_defaults()
  c.model = _model_defaults(model)
  c.grow = growing.config_defaults()  # ProGAN's low-resolution phase: off
  _objective_defaults(c)
  _optimizer_and_augment_defaults(c)
  _monitor_and_eval_defaults(c)
  return c


def _data_defaults() -> ml_collections.ConfigDict:
  """config.data: which images, at what size (gemgan.datasets)."""
  c = ml_collections.ConfigDict()
  c.name = "gemstones"
  c.manual_dir = "../shared/data/gemstones"  # folder or Gemstones.zip
  c.data_dir = ""  # TFDS data_dir; "" = ~/tensorflow_datasets
  c.image_size = 96
  c.resize = "center_crop"  # or "pad": see gemgan/datasets/gemstones.py
  c.random_flip = True
  c.num_examples = 4_096  # synthetic_gems only
  c.seed = 0  # synthetic_gems only: which pictures
  c.split = ""  # "" = all splits joined (Kaggle's train+test, as the notebook)
  c.on_device = True  # keep a small dataset in device memory
  return c


def _model_defaults(name: str) -> ml_collections.ConfigDict:
  """config.model: the keys every architecture reads, then `name`'s own (gemgan/models/)."""
  if name not in models.ARCHITECTURES:
    raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
  c = ml_collections.ConfigDict()
  c.name = name
  c.latent_dim = 100
  c.width = 64  # channels of the last generator / first critic layer
  c.critic_norm = "none"
  c.bn_momentum = 0.8  # the notebook's (Paddle and Flax share the convention)
  c.conditional = False  # class-conditional G and projection D
  # "fast" (gemgan/ops: XLA:CPU's conv gradients are 30x slower otherwise),
  # "xla" (plain linen convs: cuDNN on GPU), or "auto": fast on CPU only.
  c.conv_impl = "auto"
  c.update(models.ARCHITECTURES[name].config_defaults())
  return c


def _objective_defaults(c: ml_collections.ConfigDict) -> None:
  """The loss, its penalties and the update counts of an iteration."""
  c.loss = "wasserstein"
  c.gp_weight = 10.0
  c.r1_weight = 0.0
  c.r1_every = 1  # lazy R1: apply every k critic steps, scaled by k
  c.r2_weight = 0.0  # R2: the same zero-centred penalty at fake samples (R3GAN)
  c.n_critic = 5  # critic updates per iteration, each on a fresh real batch
  c.n_generator = 1  # generator updates per iteration (the notebook's WGAN-GP: 2)
  # n_critic = n_generator = 1 only: one generator pass makes the fakes of both
  # updates, the G update backpropagating the critic through that pass's VJP
  # (FastGAN's official loop; one G forward per iteration instead of two).
  c.share_fakes = False
  # One critic pass over concat(real, fake) instead of one pass each
  # (BigGAN-PyTorch's G_D); with spectral norm one power iteration per critic
  # update instead of two. Refused where the fused pass would be another
  # function (BatchNorm or dropout in D, R1 every step, R2, FastGAN).
  c.fused_critic = False
  # n_critic > 1 only: the n_critic fake batches of an iteration from one
  # (vmapped) generator pass, same latents as the one-pass-per-update loop.
  c.batched_fakes = False
  c.latent_dist = "normal"
  c.num_train_steps = (c.get_ref("num_train_kimg") * 1000
                       // (c.get_ref("batch_size") * c.get_ref("n_critic"))).to_int()


def _optimizer_and_augment_defaults(c: ml_collections.ConfigDict) -> None:
  """Adam, the EMA of G, augmentation and the cosine schedules."""
  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.g_lr = 1e-4
  c.optimizer.d_lr = 1e-4
  c.optimizer.b1 = 0.0
  c.optimizer.b2 = 0.9

  c.ema = ml_collections.ConfigDict()
  c.ema.enabled = False
  c.ema.halflife_kimg = 10.0  # StyleGAN2-ADA's convention
  c.ema.rampup = 0.05  # half-life ramps with images seen; 0 disables

  c.augment = ml_collections.ConfigDict()
  c.augment.policy = ""  # DiffAugment policy, e.g. "color,translation,cutout"
  c.augment.ada_ops = ""  # ADA ops applied with probability p (gemgan/ada.py); "" = off
  c.augment.p = 0.0  # ADA's probability at the start (fixed unless adapted/scheduled)
  c.augment.ada_target = 0.0  # adapt p so that E[sign(D(real))] -> target (0.6); 0 = fixed
  c.augment.ada_interval = 4  # iterations between adjustments (StyleGAN2-ADA)
  c.augment.ada_kimg = 500.0  # p can move 0 -> 1 in this many kimg (StyleGAN2-ADA)

  # Cosine schedules over images (gemgan/schedules.py): each set *_end is reached
  # after schedule.kimg (0: the run's num_train_kimg); unset ends stay constant.
  c.schedule = ml_collections.ConfigDict()
  c.schedule.kimg = 0.0
  for name in ("lr", "b2", "gamma", "ema_halflife_kimg", "aug_p"):
    c.schedule[f"{name}_end"] = config_dict.placeholder(float)


def _monitor_and_eval_defaults(c: ml_collections.ConfigDict) -> None:
  """Alarms (overfitting, collapse) and the standalone evaluation's defaults."""
  c.monitor = ml_collections.ConfigDict()
  # ADA's r_t = E[sign(D(real))]; only meaningful where the loss pins D's zero
  # (BCE, hinge), so Wasserstein runs skip it.
  c.monitor.overfit_threshold = 0.6
  # monitors.sample_diversity: between-sample share of the grid's variance;
  # real gem batches give ~0.6-0.85, a collapsed generator ~0.
  c.monitor.collapse_threshold = 0.05

  c.eval = ml_collections.ConfigDict()
  c.eval.num_samples = 2_000
  c.eval.weights = ""  # converted Inception weights; "" = default location


def hinge_sn_recipe(c: ml_collections.ConfigDict) -> None:
  """SNGAN's small-data recipe on any architecture: hinge, spectral-norm D, EMA, DiffAugment.

  Adam (0, 0.999) at 2e-4 for both networks and 2 critic steps per G step,
  as SNGAN's CIFAR setting (Miyato et al. 2018) and DiffAugment-BigGAN.
  """
  c.model.critic_norm = "spectral"
  c.loss = "hinge"
  c.gp_weight = 0.0
  c.n_critic = 2
  c.optimizer.update(g_lr=2e-4, d_lr=2e-4, b1=0.0, b2=0.999)
  c.ema.enabled = True
  c.augment.policy = "color,translation,cutout"


def add_fid_evaluator(c: ml_collections.ConfigDict, num_samples: int, every_kimg: float,
                      best: bool = True) -> str:
  """Declares an `inception` evaluator named by its sample count (fid2k, fid500); returns the name.

  `every_kimg` 0 declares it switched off (a command line can turn it on).

  With `best`, the loop keeps the checkpoint of its lowest FID in checkpoints_best.
  """
  name = f"fid{num_samples // 1000}k" if num_samples % 1000 == 0 else f"fid{num_samples}"
  c.evaluators[name] = ml_collections.ConfigDict(
      {"type": "inception", "every_kimg": float(every_kimg), "num_samples": int(num_samples)})
  if best:
    c.best_metric = f"{name}/fid"
  return name


def split_presets(preset: str, choices: tuple[str, ...], config_file: str) -> list[str]:
  """`preset`'s comma-separated parts, in order; a name not in `choices` is a ValueError.

  Checked before any is applied, so a typo fails naming every preset of the
  file (`config_file`: the config's __file__) whatever its position.
  """
  parts = [p for p in preset.split(",") if p]
  for part in parts:
    if part not in choices:
      listed = ", ".join(map(repr, choices[:-1])) + f" and {choices[-1]!r}"
      raise ValueError(f"unknown preset {part!r} for configs/{os.path.basename(config_file)}; "
                       f"combine {listed} with commas")
  return parts


def quick_preset(c: ml_collections.ConfigDict) -> None:
  """The CPU-sized first run every recipe offers: synthetic gems, 32 px, width 16."""
  c.data.name = "synthetic_gems"
  c.data.image_size = 32
  c.data.num_examples = 2048
  c.model.width = 16
  c.batch_size = 32
  c.log_every_steps = 100
  c.sample_every_steps = 500
  c.checkpoint_every_steps = 500


class ConfigError(ValueError):
  """A config value that cannot work, with the key that holds it."""


def _check(cond: bool, key: str, msg: str):
  if not cond:
    raise ConfigError(f"config.{key}: {msg}")


_is_int, _is_number = config_checks.is_int, config_checks.is_number

# Every key base_config() has for all architectures, by kind (each architecture
# checks its own in its check_config). Integers: key -> lowest value.
_INTS = {
    "seed": 0, "batch_size": 1, "num_train_steps": 1, "log_every_steps": 1,
    "sample_every_steps": 1, "checkpoint_every_steps": 1,
    "max_to_keep": 1, "num_sample_grid": 1, "max_steps_in_flight": 1,
    "data.num_examples": 1, "data.seed": 0, "model.latent_dim": 1, "model.width": 1,
    "r1_every": 1, "n_critic": 1, "n_generator": 1, "eval.num_samples": 1,
    "augment.ada_interval": 1,
}
# Reals: key -> (lowest, highest or None, whether highest itself is excluded).
_NUMBERS = {
    "checkpoint_every_minutes": (0.0, None, False), "log_every_secs": (0.0, None, False),
    "model.bn_momentum": (0.0, 1.0, True), "gp_weight": (0.0, None, False),
    "r1_weight": (0.0, None, False), "optimizer.b1": (0.0, 1.0, True),
    "optimizer.b2": (0.0, 1.0, True), "ema.rampup": (0.0, None, False),
    "monitor.overfit_threshold": (0.0, 1.0, False),
    "monitor.collapse_threshold": (0.0, 1.0, False),
    "r2_weight": (0.0, None, False), "augment.p": (0.0, 1.0, False),
    "augment.ada_target": (0.0, 1.0, True),
    "schedule.kimg": (0.0, None, False),  # 0: the run's num_train_kimg
}
_POSITIVE = ("optimizer.g_lr", "optimizer.d_lr", "ema.halflife_kimg", "augment.ada_kimg")  # > 0
_BOOLS = ("share_fakes", "fused_critic", "batched_fakes", "data.random_flip", "data.on_device",
          "model.conditional", "ema.enabled")
_STRINGS = ("data.manual_dir", "data.data_dir", "data.split", "augment.policy",
            "augment.ada_ops", "eval.weights", "best_metric")
_NOTES = {"checkpoint_every_minutes": " (0 disables)", "log_every_secs": " (0 disables)"}
_CHOICE_NOUNS = {"model.name": "model", "loss": "loss"}
_CHOICES = {
    "model.name": MODEL_NAMES, "loss": LOSSES, "model.critic_norm": CRITIC_NORMS,
    "latent_dist": LATENT_DISTS, "data.resize": RESIZE_METHODS,
    "precision": PRECISIONS, "model.conv_impl": CONV_IMPLS,
}


def _check_numbers(c) -> None:
  for key, lowest in _INTS.items():
    config_checks.integer(_check, c, key, lowest, _NOTES.get(key, ""))
  for key, (lowest, highest, open_top) in _NUMBERS.items():
    config_checks.number(_check, c, key, lowest, highest, open_top, _NOTES.get(key, ""))
  for key in _POSITIVE:
    config_checks.positive(_check, c, key)


def _check_kinds(c) -> None:
  for key in _BOOLS:
    config_checks.boolean(_check, c, key)
  for key in _STRINGS:
    config_checks.string(_check, c, key)
  for key, choices in _CHOICES.items():
    config_checks.choice(_check, c, key, choices, _CHOICE_NOUNS.get(key, ""))


def _check_dataset(c) -> None:
  """config.data.name: registered in gemgan.datasets, else any dataset TFDS knows."""
  from gemgan import datasets  # pylint: disable=g-import-not-at-top  (TFDS: only here)
  try:
    datasets.check_name(c.data)
  except datasets.UnknownDatasetError as e:
    raise ConfigError(f"config.data.name: {e}") from None


def validate(config: ml_collections.ConfigDict, num_devices: int = 1) -> None:
  """Raises ConfigError naming the first key whose value cannot work.

  Every key of base_config() is checked for type and range: the shared ones
  here, each architecture's own by its check_config (gemgan/models/).
  """
  c = config
  _check_kinds(c)
  _check_dataset(c)
  # num_train_steps is computed from these two: check them before reading it.
  for key in ("n_critic", "batch_size"):
    _check(_is_int(c[key]), key, f"must be an integer, got {c[key]!r}")
    _check(c[key] >= 1, key, f"must be >= 1, got {c[key]}")
  kimg = c.num_train_kimg
  _check(_is_number(kimg) and kimg > 0, "num_train_kimg", f"must be a number > 0, got {kimg!r}")
  size = c.data.image_size
  _check(_is_int(size) and size > 0 and size % UPSAMPLE_FACTOR == 0, "data.image_size",
         f"{size} cannot be made by four stride-2 upsamplings of a square map: use a "
         "multiple of 16 (32, 64, 96, 128, ...)")
  _check_numbers(c)
  _check(c.batch_size % num_devices == 0, "batch_size",
         f"{c.batch_size} is not divisible by the {num_devices} devices")
  try:
    augment.parse_policy(c.augment.policy)
  except ValueError as e:
    raise ConfigError(f"config.augment.policy: {e}") from None
  _validate_architecture(c)
  growing.check_config(c, _check)
  _validate_augment_and_schedules(c)
  _validate_evaluators(c)


def best_metrics(c) -> tuple[str, ...]:
  """Every '<evaluator>/<metric>' of the config's evaluators where lower is better."""
  from gemgan import evaluators  # pylint: disable=g-import-not-at-top
  return tuple(f"{name}/{m}" for name, spec in c.evaluators.items()
               for m in evaluators.get(evaluators.type_of(spec)).BEST_METRICS)


def _validate_evaluators(c):
  """Each entry by its type's own checks (gemgan/evaluators/); best_metric among their metrics."""
  from gemgan import evaluators  # pylint: disable=g-import-not-at-top
  for name, spec in c.evaluators.items():
    evaluators.check(spec, f"evaluators.{name}", c)
  if c.best_metric:
    choices = best_metrics(c)
    _check(c.best_metric in choices, "best_metric",
           f"{c.best_metric!r} must be '<evaluator>/<metric>' with an evaluator of "
           f"config.evaluators ({', '.join(c.evaluators) or 'none declared'}) and a "
           f"lower-is-better metric it reports: one of {choices}")


def _validate_architecture(c):
  """The architecture's own keys (its check_config), then what the losses need of it."""
  m = c.model
  arch = models.ARCHITECTURES[m.name]
  for key in arch.config_defaults():
    _check(key in m, f"model.{key}", f"missing, and {m.name} reads it: start from "
           f"config_lib.base_config({m.name!r})")
  arch.check_config(c, _check)
  _validate_step_variants(c)
  _check(c.loss != "rpgan" or c.gp_weight == 0, "gp_weight",
         "WGAN-GP's penalty pulls gradient norms to 1; RpGAN uses R1/R2 (r1_weight, "
         "r2_weight) instead: set gp_weight=0")


def _validate_step_variants(c):
  """share_fakes, batched_fakes and fused_critic: only where the iteration stays the same.

  fused_critic runs the critic once on concat(real, fake)
  (objectives.critic_objective); that is the two passes' function only if
  every score depends on its own sample alone and no penalty needs one
  pass's own input gradient. Architectures refuse what only they know
  (FastGAN's BatchNorm and reconstruction, the conv stacks' dropout).
  """
  _check(not c.share_fakes or c.n_critic == c.n_generator == 1, "share_fakes",
         f"one generator pass serves one critic and one G update: needs n_critic = "
         f"n_generator = 1, got {c.n_critic} and {c.n_generator}")
  _check(not c.batched_fakes or c.n_critic > 1, "batched_fakes",
         "makes the fakes of the n_critic critic updates in one generator pass: needs "
         f"n_critic > 1, got {c.n_critic} (with 1, share_fakes saves a G pass instead)")
  if not c.fused_critic:
    return
  _check(c.model.critic_norm != "batch", "fused_critic",
         "the critic's BatchNorm (model.critic_norm='batch') would take its batch "
         "statistics over real and fake together, not over each pass: set "
         "fused_critic=False")
  _check(not (c.r1_weight > 0 and c.r1_every == 1), "fused_critic",
         "R1 every critic update (r1_every=1) is the input gradient of the real pass "
         "itself; one pass over real and fake would differentiate (twice) the fakes too: "
         "use lazy R1 (r1_every > 1, its own pass) or fused_critic=False")
  _check(c.r2_weight == 0, "fused_critic",
         "R2 is the input gradient of the fake pass itself; one pass over real and fake "
         "would differentiate (twice) the reals too: set fused_critic=False")


def _validate_augment_and_schedules(c):
  """ADA's ops and the schedules' end values (None: not scheduled)."""
  a, s = c.augment, c.schedule
  _check(not a.ada_target or a.ada_ops, "augment.ada_ops",
         "adaptive p (augment.ada_target > 0) needs ADA ops to apply")
  if a.ada_ops:
    try:
      ada.validate_ops(a.ada_ops)
    except ValueError as e:
      raise ConfigError(f"config.augment.ada_ops: {e}") from None
  for name, highest in (("lr", None), ("b2", 0.9999), ("gamma", None),
                        ("ema_halflife_kimg", None), ("aug_p", 1.0)):
    end = s[f"{name}_end"]
    ok = end is None or (_is_number(end) and end >= 0 and (highest is None or end <= highest))
    _check(ok, f"schedule.{name}_end",
           f"must be unset or a number in [0, {highest or 'inf'}], got {end!r}")
  _check(s.gamma_end is None or c.r1_weight > 0, "schedule.gamma_end",
         "anneals r1_weight (and r2_weight by the same factor): set r1_weight > 0")
