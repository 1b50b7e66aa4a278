"""Growing the resolution during a run: ProGAN's schedule, for one doubling or more.

Progressive growing (Karras et al. 2018, "Progressive Growing of GANs"):
train first at a low resolution, where an iteration is cheap and the large
shapes are learnt, then fade in the full-resolution stage. Here the
networks keep their full-size structure throughout, so checkpoints, the
critic and every sampling tool see one state:

- Until `grow.kimg`, G's output is its `grow.size` head upsampled
  (`grow.upsample`: nearest neighbour, or bilinear; G skips its later
  stages: the cheap phase), and the reals are average-pooled to `grow.size`
  and upsampled the same way.
- Over the next `grow.fade_kimg`, alpha goes 0 -> 1: the reals are
  (1 - alpha) * low-resolution + alpha * full-resolution (ProGAN's fade),
  and G's later stages add alpha times their output to the upsampled
  low-resolution image, in logit space, through a head that starts at zero
  (StyleGAN2's skip generator): growing leaves G's images as they were.
- alpha lives in G's `grow` collection, so a checkpoint samples as it trained.

A critic with `model.critic_stem="space_to_depth"` costs the same in both
phases: at 2x, its folded input is the low-resolution image four times.
"""
import jax
import jax.numpy as jnp
import ml_collections

from gemgan import config_checks
from gemgan.models import layers

COLLECTION = "grow"  # G's variable collection holding alpha
UPSAMPLINGS = ("nearest", "bilinear")


def config_defaults() -> ml_collections.ConfigDict:
  """config.grow: off (size 0) unless a config sets it."""
  return ml_collections.ConfigDict(dict(
      size=0,  # resolution of the first phase; 0: train at data.image_size throughout
      kimg=0.0,  # kimg (real images shown to the critic) of the low-resolution phase
      fade_kimg=0.0,  # kimg over which the full-resolution output fades in
      upsample="nearest",  # the low-resolution image to full size: one of UPSAMPLINGS
  ))


def steps_for(config, kimg: float) -> int:
  """Iterations that show the critic `kimg` thousand real images (num_train_steps' rule)."""
  return int(kimg * 1000 // (config.batch_size * config.n_critic))


def first_full_step(config) -> int:
  """The first iteration that runs the full-resolution network."""
  return steps_for(config, config.grow.kimg)


def alpha(config, step):
  """The full-resolution output's weight at iteration `step` (traced or not): 0 -> 1."""
  start = first_full_step(config)
  fade = max(steps_for(config, config.grow.fade_kimg), 1)
  return jnp.clip((jnp.asarray(step, jnp.float32) - start + 1) / fade, 0.0, 1.0)


def upsample(x, factor: int, method: str = "nearest"):
  """[..., H, W, C] maps `factor` times larger: by nearest neighbour, or "bilinear".

  Bilinear as PIL, TF and torch's align_corners=False draw it (half-pixel
  centres, edges clamped): a low-resolution image shown smooth, not in blocks.
  """
  if method == "nearest":
    return layers.upsample_nearest(x, factor)
  *lead, h, w, c = x.shape
  return jax.image.resize(x, (*lead, h * factor, w * factor, c), "linear")


def low_resolution(images, size: int, method: str = "nearest"):
  """[..., H, W, C] images average-pooled to `size` and upsampled back by `method`."""
  *lead, h, w, c = images.shape
  f = h // size
  pooled = images.reshape(*lead, size, f, w // f, f, c).mean(axis=(-4, -2))
  return upsample(pooled, f, method)


def reals(config, images, alpha_value=None):
  """The real batch as the critic sees it: low resolution when `alpha_value` is None
  (the cheap phase), else faded by it; unchanged without growing."""
  if not config.grow.size:
    return images
  low = low_resolution(images, config.grow.size, config.grow.upsample)
  if alpha_value is None:
    return low
  return (1.0 - alpha_value) * low + alpha_value * images  # exactly `images` at 1


def check_config(config, check) -> None:
  """config.grow against the data size and architecture; `check(cond, key, msg)` raises."""
  g, size, s = config.grow, config.data.image_size, config.grow.size
  config_checks.integer(check, config, "grow.size", 0, " (0: no growing)")
  config_checks.number(check, config, "grow.kimg", 0.0)
  config_checks.number(check, config, "grow.fade_kimg", 0.0)
  config_checks.choice(check, config, "grow.upsample", UPSAMPLINGS)
  if not s:
    return
  check(config.model.name == "resnet", "grow.size",
        f"only the ResNet generator has a low-resolution head; model.name is "
        f"{config.model.name!r}")
  start, n = layers.num_resamplings(size)
  stages = [start * 2**k for k in range(1, n)]
  check(s in stages, "grow.size",
        f"{s} is not a stage of the {size} px generator below its output: one of {stages}")
  check(g.kimg > 0, "grow.kimg", "must be > 0 when grow.size is set (0 kimg at "
        f"{s} px would never train the low-resolution head)")
