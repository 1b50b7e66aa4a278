"""Pictures people look at: sample grids and loss curves."""
import json
import math
import os
from typing import Optional, Sequence

import numpy as np
from PIL import Image


def to_uint8(images) -> np.ndarray:
  """Float images in [-1, 1] -> uint8 [0, 255] (rounded, clipped)."""
  images = np.asarray(images, dtype=np.float32)
  return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def from_uint8(images):
  """uint8 [0, 255] -> float32 in [-1, 1]; numpy or JAX arrays (jittable)."""
  return images.astype(np.float32) / 127.5 - 1.0


def image_grid(images: np.ndarray, ncols: Optional[int] = None, pad: int = 2,
               pad_value: int = 255) -> np.ndarray:
  """uint8 [N, H, W, C] -> one uint8 picture with the images in rows.

  `ncols` defaults to the ceiling of sqrt(N) (an 8x8 grid for 64 samples).
  """
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, np.uint8)
  for i, image in enumerate(images):
    r, col = divmod(i, ncols)
    y, x = pad + r * (h + pad), pad + col * (w + pad)
    grid[y:y + h, x:x + w] = image
  return grid


def save_png(path: str, image: np.ndarray) -> None:
  """Writes a uint8 [H, W, 3] array, creating the folder; atomic rename."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp.png"
  Image.fromarray(image).save(tmp)
  os.replace(tmp, path)


def read_jsonl(path: str) -> list[dict]:
  """Records of a metrics.jsonl file (lines that fail to parse are skipped)."""
  out = []
  with open(path) as f:
    for line in f:
      try:
        out.append(json.loads(line))
      except json.JSONDecodeError:
        continue  # a line cut short by a kill
  return out


def plot_curves(records: Sequence[dict], path: str,
                keys: Sequence[str] = ("d_loss", "g_loss", "wasserstein",
                                       "gradient_penalty")) -> None:
  """Loss curves against the step, one panel per metric present."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  keys = [k for k in keys if any(k in r for r in records)]
  if not keys:
    return
  fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), squeeze=False)
  for ax, key in zip(axes[0], keys):
    pts = [(r["step"], r[key]) for r in records if key in r]
    ax.plot(*zip(*pts), lw=1)
    ax.set_title(key)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
