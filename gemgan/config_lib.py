"""Shared config defaults and up-front validation.

Config files in `configs/` start from `base_config()` and change what their
recipe needs; `validate(config)` runs before anything is built, so a bad value
fails in the first second with a message that names the key.
"""
import ml_collections

from gemgan import augment

MODEL_NAMES = ("dcgan", "wgan_gp")
LOSSES = ("nonsaturating", "minimax", "wasserstein", "hinge")
CRITIC_NORMS = ("none", "batch", "layer", "spectral")
LATENT_DISTS = ("normal", "uniform")
DATASETS = ("synthetic_gems", "gemstones")
RESIZE_METHODS = ("center_crop", "pad")
PRECISIONS = ("float32", "bfloat16")
CONV_IMPLS = ("auto", "xla", "fast")
UPSAMPLE_FACTOR = 16  # four stride-2 layers after the first KxK map


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by every recipe; configs override what differs."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 64  # global batch, split over all devices
  c.num_train_steps = 100_000  # generator steps (= iterations)
  c.log_every_steps = 100
  c.sample_every_steps = 1_000
  c.checkpoint_every_steps = 2_000
  c.eval_every_steps = 0  # 0 disables evaluation during training
  c.max_to_keep = 3
  c.num_sample_grid = 64  # fixed-z grid written every sample_every_steps
  c.precision = "float32"

  c.data = ml_collections.ConfigDict()
  c.data.name = "gemstones"
  c.data.manual_dir = "../shared/data/gemstones"  # folder or Gemstones.zip
  c.data.data_dir = ""  # TFDS data_dir; "" = ~/tensorflow_datasets
  c.data.image_size = 96
  c.data.resize = "center_crop"  # or "pad": see gemgan/datasets/gemstones.py
  c.data.random_flip = True
  c.data.num_examples = 4_096  # synthetic_gems only
  c.data.seed = 0  # synthetic_gems only: which pictures
  c.data.split = ""  # "" = all splits joined (Kaggle's train+test, as the notebook)
  c.data.on_device = True  # keep a small dataset in device memory

  c.model = ml_collections.ConfigDict()
  c.model.name = "wgan_gp"
  c.model.latent_dim = 100
  c.model.width = 64  # channels of the last generator / first critic layer
  c.model.critic_norm = "none"
  c.model.critic_dropout = 0.0
  c.model.generator_final_norm = False  # notebook's WGAN-GP: BN before tanh
  c.model.bias_before_norm = False  # notebook's WGAN-GP G: conv biases before BN
  c.model.bn_momentum = 0.8  # the notebook's (Paddle and Flax share the convention)
  c.model.conditional = False  # class-conditional G and projection D
  # "fast" (gemgan/ops: XLA:CPU's conv gradients are 30x slower otherwise),
  # "xla" (plain linen convs: cuDNN on GPU), or "auto": fast on CPU only.
  c.model.conv_impl = "auto"

  c.loss = "wasserstein"
  c.gp_weight = 10.0
  c.r1_weight = 0.0
  c.r1_every = 1  # lazy R1: apply every k critic steps, scaled by k
  c.n_critic = 5  # critic updates per iteration, each on a fresh real batch
  c.n_generator = 1  # generator updates per iteration (the notebook's WGAN-GP: 2)
  c.latent_dist = "normal"

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
  return c


class ConfigError(ValueError):
  """A config value that cannot work, with the key that holds it."""


def _check(cond: bool, key: str, msg: str):
  if not cond:
    raise ConfigError(f"config.{key}: {msg}")


def validate(config: ml_collections.ConfigDict, num_devices: int = 1) -> None:
  """Raises ConfigError naming the first key whose value cannot work."""
  c = config
  _check(c.model.name in MODEL_NAMES, "model.name",
         f"unknown model {c.model.name!r}; choose one of {MODEL_NAMES}")
  _check(c.loss in LOSSES, "loss", f"unknown loss {c.loss!r}; choose one of {LOSSES}")
  _check(c.model.critic_norm in CRITIC_NORMS, "model.critic_norm",
         f"{c.model.critic_norm!r} is not one of {CRITIC_NORMS}")
  _check(c.latent_dist in LATENT_DISTS, "latent_dist",
         f"{c.latent_dist!r} is not one of {LATENT_DISTS}")
  _check(c.data.name in DATASETS, "data.name",
         f"unknown dataset {c.data.name!r}; choose one of {DATASETS}")
  _check(c.data.resize in RESIZE_METHODS, "data.resize",
         f"{c.data.resize!r} is not one of {RESIZE_METHODS}")
  _check(c.precision in PRECISIONS, "precision",
         f"{c.precision!r} is not one of {PRECISIONS}")
  _check(c.model.conv_impl in CONV_IMPLS, "model.conv_impl",
         f"{c.model.conv_impl!r} is not one of {CONV_IMPLS}")
  size = c.data.image_size
  _check(isinstance(size, int) and size > 0 and size % UPSAMPLE_FACTOR == 0,
         "data.image_size",
         f"{size} cannot be made by four stride-2 upsamplings of a square map: use a "
         "multiple of 16 (32, 64, 96, 128, ...)")
  _check(c.n_critic >= 1, "n_critic", f"must be >= 1, got {c.n_critic}")
  _check(c.n_generator >= 1, "n_generator", f"must be >= 1, got {c.n_generator}")
  _check(c.batch_size >= 1, "batch_size", f"must be >= 1, got {c.batch_size}")
  _check(c.batch_size % num_devices == 0, "batch_size",
         f"{c.batch_size} is not divisible by the {num_devices} devices")
  _check(c.model.latent_dim >= 1, "model.latent_dim", "must be >= 1")
  _check(c.model.width >= 1, "model.width", "must be >= 1")
  _check(0.0 <= c.model.critic_dropout < 1.0, "model.critic_dropout", "must be in [0, 1)")
  _check(c.num_train_steps >= 1, "num_train_steps", "must be >= 1")
  for key in ("log_every_steps", "sample_every_steps", "checkpoint_every_steps"):
    _check(c[key] >= 1, key, f"must be >= 1, got {c[key]}")
  _check(c.eval_every_steps >= 0, "eval_every_steps", "must be >= 0 (0 disables)")
  _check(c.gp_weight >= 0 and c.r1_weight >= 0, "gp_weight/r1_weight", "must be >= 0")
  _check(c.r1_every >= 1, "r1_every", "must be >= 1")
  _check(c.optimizer.g_lr > 0 and c.optimizer.d_lr > 0, "optimizer", "learning rates must be > 0")
  _check(c.max_to_keep >= 1, "max_to_keep", "must be >= 1")
  try:
    augment.parse_policy(c.augment.policy)
  except ValueError as e:
    raise ConfigError(f"config.augment.policy: {e}") from None
