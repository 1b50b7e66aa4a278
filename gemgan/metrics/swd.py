"""Sliced Wasserstein distance of ProGAN (Karras et al. 2018, section 5 and appendix D).

Weight-free, per scale: each image's Laplacian pyramid, from its resolution
down to 16 px; 128 random 7x7 neighbourhoods per image and level (7x7x3 =
147-d descriptors); each colour channel normalised to zero mean and unit
variance within each set; then the sliced Wasserstein distance between the
real and fake descriptor sets, averaged over 4 x 128 random unit directions,
reported x 1e3. Small distances at fine levels mean similar local texture,
at the 16 px level similar large-scale structure. One deviation from
ProGAN's code: both sets take their neighbourhoods at the same random
positions, which removes position noise (a set scores exactly 0 against
itself) without changing what is compared.
"""
from concurrent import futures

import numpy as np
from scipy import ndimage

MIN_RESOLUTION = 16
PATCH = 7
PATCHES_PER_IMAGE = 128
NUM_REPEATS = 4
DIRECTIONS_PER_REPEAT = 128
SCALE = 1e3
_BINOMIAL = np.array([1, 4, 6, 4, 1], np.float32) / 16  # 5x5 Gaussian, separable


def _blur(x: np.ndarray) -> np.ndarray:
  for axis in (1, 2):
    x = ndimage.convolve1d(x, _BINOMIAL, axis=axis, mode="mirror")
  return x


def num_levels(resolution: int) -> int:
  """Pyramid levels of an image of this size: resolution, /2, ... while >= 16."""
  n = 0
  while resolution >= MIN_RESOLUTION:
    n, resolution = n + 1, resolution // 2
  return n


def laplacian_pyramid(images: np.ndarray, levels: int) -> list[np.ndarray]:
  """[N, H, W, C] -> band-pass levels, finest first; the last is the low-pass residual."""
  gaussians = [np.asarray(images, np.float32)]
  for _ in range(levels - 1):
    gaussians.append(_blur(gaussians[-1])[:, ::2, ::2])
  pyramid = []
  for fine, coarse in zip(gaussians[:-1], gaussians[1:]):
    up = np.zeros_like(fine)
    up[:, ::2, ::2] = coarse
    pyramid.append(fine - 4.0 * _blur(up))  # x4: the zeros carry no weight
  return pyramid + [gaussians[-1]]


def patch_descriptors(level: np.ndarray, rng: np.random.Generator,
                      per_image: int = PATCHES_PER_IMAGE) -> np.ndarray:
  """`per_image` random 7x7 neighbourhoods per image -> [N * per_image, 147], normalised.

  Each channel is standardised over the whole set (all descriptors, all
  positions), as ProGAN does separately for the real and the fake set.
  """
  n, h, w, c = level.shape
  if min(h, w) < PATCH:
    raise ValueError(f"level {h}x{w} is smaller than the {PATCH}x{PATCH} neighbourhood")
  img = np.repeat(np.arange(n), per_image)
  ys = rng.integers(0, h - PATCH + 1, n * per_image)
  xs = rng.integers(0, w - PATCH + 1, n * per_image)
  windows = np.lib.stride_tricks.sliding_window_view(level, (PATCH, PATCH), axis=(1, 2))
  patches = windows[img, ys, xs]  # [M, C, 7, 7], copied out of a view: 5x faster than a gather
  # Per-channel float64 statistics over contiguous rows: 2.7x faster than over axes (0, 1, 2).
  by_channel = patches.transpose(1, 0, 2, 3).reshape(c, -1)
  mean = by_channel.mean(axis=1, dtype=np.float64)
  std = by_channel.std(axis=1, dtype=np.float64)
  patches = patches.transpose(0, 2, 3, 1)  # ProGAN's descriptor order, 7 x 7 x C
  patches = (patches - mean.astype(np.float32)) / np.maximum(std, 1e-8).astype(np.float32)
  return patches.reshape(len(patches), -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                       repeats: int = NUM_REPEATS,
                       directions: int = DIRECTIONS_PER_REPEAT) -> float:
  """Mean over random unit directions of the 1-D Wasserstein-1 distance of the projections.

  The sets must have equal size.
  """
  if a.shape != b.shape:
    raise ValueError(f"descriptor sets differ in shape: {a.shape} vs {b.shape}")
  dists = []
  with futures.ThreadPoolExecutor(2) as pool:
    for _ in range(repeats):
      dirs = rng.standard_normal((a.shape[1], directions)).astype(np.float32)
      dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
      # [directions, M]: numpy sorts contiguous rows 2.7x faster than columns, and it
      # releases the GIL, so the two sets sort on two cores.
      pa, pb = dirs.T @ a.T, dirs.T @ b.T
      list(pool.map(lambda p: p.sort(axis=1), (pa, pb)))
      dists.append(np.mean(np.abs(pa - pb)))
  return float(np.mean(dists))


def swd(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> dict[str, float]:
  """{"swd_<res>": ..., "swd_mean": ...} (x 1e3) between uint8 image sets [N, H, H, 3].

  Both sets must have the same resolution; the larger set is subsampled to
  the size of the smaller, so both give the same number of descriptors.
  Deterministic given `seed`.
  """
  if real.ndim != 4 or real.shape[1:] != fake.shape[1:] or real.shape[1] != real.shape[2]:
    raise ValueError(f"need two sets of square images of one size, got {real.shape} and "
                     f"{fake.shape}")
  resolution = real.shape[1]
  levels = num_levels(resolution)
  if levels == 0:
    raise ValueError(f"SWD needs images of at least {MIN_RESOLUTION} px, got {resolution}")
  rng = np.random.default_rng(seed)
  n = min(len(real), len(fake))
  real = real if len(real) == n else real[np.sort(rng.choice(len(real), n, replace=False))]
  fake = fake if len(fake) == n else fake[np.sort(rng.choice(len(fake), n, replace=False))]
  out = {}
  for i, (a, b) in enumerate(zip(laplacian_pyramid(real, levels),
                                 laplacian_pyramid(fake, levels))):
    # Both sets take their patches at the same random positions (common random
    # numbers): the distributions compared are unchanged, the estimate is less
    # noisy, and a set against itself scores exactly 0.
    positions = rng.integers(2**32)
    da = patch_descriptors(a, np.random.default_rng(positions))
    db = patch_descriptors(b, np.random.default_rng(positions))
    out[f"swd_{resolution >> i}"] = SCALE * sliced_wasserstein(da, db, rng)
  out["swd_mean"] = float(np.mean(list(out.values())))
  return out
