"""Image sets on disk (folders or zips), read the way pytorch-fid reads them.

pytorch-fid opens each file with PIL, converts it to RGB, divides by 255 and
lets the network resize it to 299 (bilinear, `align_corners=False`, no
antialiasing). Files come in many sizes, and a jitted resize would compile
once per size, so here each image is resized on the host by the same
two-tap formula as torch's `upsample_bilinear2d` (tested against
`jax.image.resize(..., antialias=False)`); the network's own resize is then
the identity.
"""
import hashlib
import io
import os
import zipfile
from typing import Iterator

import numpy as np
from PIL import Image

EXTENSIONS = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")


def list_images(path: str) -> list[str]:
  """Sorted image files under a folder (recursively) or members of a zip.

  pytorch-fid globs only the top level of a folder; on a flat folder the two
  lists are the same files in the same order.
  """
  if zipfile.is_zipfile(path):
    with zipfile.ZipFile(path) as z:
      names = [n for n in z.namelist() if n.lower().endswith(EXTENSIONS)
               and not os.path.basename(n).startswith(".")]
  elif os.path.isdir(path):
    names = [os.path.relpath(os.path.join(root, f), path)
             for root, _, files in os.walk(path) for f in files
             if f.lower().endswith(EXTENSIONS) and not f.startswith(".")]
  else:
    raise FileNotFoundError(f"{path} is neither a folder nor a zip of images")
  if not names:
    raise ValueError(f"no image files ({', '.join(EXTENSIONS)}) in {path}")
  return sorted(names)


def files_fingerprint(path: str) -> str:
  """Short hash of the file list with sizes and times (zip: sizes and CRCs), for caching."""
  h = hashlib.sha256()
  if zipfile.is_zipfile(path):
    with zipfile.ZipFile(path) as z:
      info = {i.filename: i for i in z.infolist()}
      for n in list_images(path):
        h.update(f"{n}|{info[n].file_size}|{info[n].CRC}\n".encode())
  else:
    for n in list_images(path):
      st = os.stat(os.path.join(path, n))
      h.update(f"{n}|{st.st_size}|{st.st_mtime_ns}\n".encode())
  return h.hexdigest()[:16]


def _taps(in_size: int, out_size: int):
  """torch's source indices and weights for align_corners=False linear resampling."""
  scale = np.float32(in_size / out_size)
  src = np.maximum((np.arange(out_size, dtype=np.float32) + 0.5) * scale - 0.5, 0)
  i0 = np.minimum(src.astype(np.int64), in_size - 1)
  i1 = np.minimum(i0 + 1, in_size - 1)
  return i0, i1, (src - i0).astype(np.float32)


def resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
  """float32 [H, W, C] -> [size, size, C], bilinear, align_corners=False, no antialiasing."""
  i0, i1, wy = _taps(image.shape[0], size)
  rows = image[i0] * (1 - wy)[:, None, None] + image[i1] * wy[:, None, None]
  j0, j1, wx = _taps(image.shape[1], size)
  return rows[:, j0] * (1 - wx)[None, :, None] + rows[:, j1] * wx[None, :, None]


def read_rgb(path: str, name: str, archive=None) -> np.ndarray:
  """One file -> uint8 [H, W, 3] (PIL `convert("RGB")`, as pytorch-fid)."""
  if archive is not None:
    data = io.BytesIO(archive.read(name))
  else:
    data = os.path.join(path, name)
  with Image.open(data) as im:
    return np.asarray(im.convert("RGB"))


def iter_batches(path: str, size: int, batch_size: int) -> Iterator[np.ndarray]:
  """float32 batches [B, size, size, 3] in [0, 1] of every image under `path`."""
  names = list_images(path)
  archive = zipfile.ZipFile(path) if zipfile.is_zipfile(path) else None
  try:
    for i in range(0, len(names), batch_size):
      yield np.stack([
          resize_bilinear(read_rgb(path, n, archive).astype(np.float32) / 255.0, size)
          for n in names[i:i + batch_size]])
  finally:
    if archive is not None:
      archive.close()


def load_uint8(path: str, size: int = 0) -> np.ndarray:
  """Every image under `path` as uint8 [N, H, W, 3] (all the same size, or resized to `size`).

  For the pixel-space SWD; resizing rounds the bilinear result to uint8.
  """
  names = list_images(path)
  archive = zipfile.ZipFile(path) if zipfile.is_zipfile(path) else None
  try:
    images = []
    for n in names:
      im = read_rgb(path, n, archive)
      if size and im.shape[:2] != (size, size):
        im = np.clip(np.rint(resize_bilinear(im.astype(np.float32), size)), 0, 255)
        im = im.astype(np.uint8)
      images.append(im)
  finally:
    if archive is not None:
      archive.close()
  shapes = {im.shape for im in images}
  if len(shapes) > 1:
    raise ValueError(f"{path} holds images of {len(shapes)} sizes (e.g. {sorted(shapes)[:3]}); "
                     "pass a size (evaluate --swd_size) to resize them")
  return np.stack(images)
