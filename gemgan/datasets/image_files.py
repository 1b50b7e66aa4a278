"""Photos in a folder or a .zip: listing, layout, decoding, and what was skipped.

The `gemstones` builder reads user-supplied photos, which come with every
kind of problem: macOS metadata in zips, truncated downloads, CMYK or 16-bit
files, archive entries that try to escape with `../`. Everything here is
deterministic (sorted listings, no clocks) and never writes to the input.

Layout: the class of an image is the folder that holds it. Single top-level
wrappers (`Gemstones/train/...`, `archive/...`) are looked through. When the
remaining top-level folders are all split names (`train`, `test`, ...), they
become splits; otherwise everything is one `train` split. A flat folder of
photos is one class named after the folder (or the zip).
"""
import collections
import dataclasses
import io
import os
import pathlib
import posixpath
import unicodedata
import warnings
import zipfile
from typing import Iterator

from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageOps

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SPLIT_NAMES = {"train": "train", "test": "test", "val": "validation", "valid": "validation",
               "validation": "validation"}
SYSTEM_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini", "$recycle.bin"})
MAX_FILE_BYTES = 256 * 2**20  # bigger files are not photos we want to decode
RESIZE_METHODS = ("center_crop", "pad")

# Skip reasons, as counted in the summary.
HIDDEN = "hidden or system file"
UNSAFE = "unsafe path in archive"
NOT_IMAGE_EXT = "not an image file extension"
EMPTY = "empty file"
NOT_IMAGE = "not an image"
CORRUPT = "corrupt or truncated image"
TOO_LARGE = "too large (decompression-bomb guard)"
UNSUPPORTED = "unsupported image mode"
NO_CLASS = "outside any class folder"


class BadImage(Exception):
  """A file that cannot be used; `reason` is one of the skip reasons above."""

  def __init__(self, reason: str, detail: str = ""):
    super().__init__(f"{reason}: {detail}" if detail else reason)
    self.reason, self.detail = reason, detail


# ---------------------------------------------------------------- report


class Report:
  """Counts what was kept, converted and skipped, and logs it as it goes."""

  def __init__(self, source: str):
    self.source = source
    self.kept = collections.Counter()  # split -> images
    self.skipped = collections.Counter()  # reason -> files
    self.converted = collections.Counter()  # conversion -> images
    self.empty_folders = []

  def skip(self, path: str, reason: str, detail: str = "", quiet: bool = False):
    self.skipped[reason] += 1
    if not quiet:
      logging.warning("Skipped %s: %s%s", path, reason, f" ({detail})" if detail else "")

  def convert(self, path: str, conversions):
    for c in conversions:
      self.converted[c] += 1
      logging.info("Converted %s: %s", path, c)

  def summary(self) -> str:
    kept = sum(self.kept.values())
    per_split = ", ".join(f"{s} {n}" for s, n in sorted(self.kept.items()))
    skipped = sum(self.skipped.values())
    text = f"{self.source}: kept {kept} images ({per_split}); skipped {skipped} files"
    if skipped:
      text += " (" + ", ".join(f"{r}: {n}" for r, n in sorted(self.skipped.items())) + ")"
    if self.converted:
      text += "; converted to RGB: " + ", ".join(
          f"{c}: {n}" for c, n in sorted(self.converted.items()))
    if self.empty_folders:
      text += f"; ignored {len(self.empty_folders)} empty folder(s)"
    return text

  def as_dict(self) -> dict:
    return {"source": self.source, "kept": dict(self.kept), "skipped": dict(self.skipped),
            "converted": dict(self.converted), "empty_folders": list(self.empty_folders)}


# --------------------------------------------------------------- sources


@dataclasses.dataclass(frozen=True)
class Entry:
  """One file of the input: its normalised relative path and how to read it."""
  path: str  # posix, NFC, relative to the input root
  size: int
  ref: object  # pathlib.Path (folder) or zipfile.ZipInfo (zip)


class Source:
  """A folder or a .zip of photos, listed in sorted order."""

  def __init__(self, path: os.PathLike | str):
    self.path = pathlib.Path(path).expanduser()
    self.is_zip = self.path.is_file()
    if self.is_zip and not zipfile.is_zipfile(self.path):
      raise ValueError(f"{self.path} is a file but not a .zip archive; point the gemstones "
                       "builder at a folder of photos or at the Kaggle Gemstones.zip")
    self.name = self.path.stem if self.is_zip else self.path.name
    self._zip = zipfile.ZipFile(self.path) if self.is_zip else None

  def close(self):
    if self._zip is not None:
      self._zip.close()

  def read(self, entry: Entry) -> bytes:
    if self._zip is not None:
      return self._zip.read(entry.ref)
    return entry.ref.read_bytes()

  def list(self, report: Report) -> list[Entry]:
    """Usable-looking image files; records hidden, unsafe and non-image entries."""
    entries, folders, hidden_dirs = [], set(), collections.Counter()
    for path, size, ref, is_dir in (self._list_zip() if self._zip else self._list_folder()):
      parts = path.split("/")
      if bad := _unsafe(path):
        if not is_dir:
          report.skip(path, UNSAFE, bad)
        continue
      hidden_at = next((i for i, p in enumerate(parts)
                        if p.startswith(".") or p.lower() in SYSTEM_NAMES), None)
      if hidden_at is not None:
        if is_dir:
          continue
        if hidden_at < len(parts) - 1:  # inside a hidden folder: one warning per folder
          hidden_dirs["/".join(parts[:hidden_at + 1])] += 1
          report.skip(path, HIDDEN, quiet=True)
        else:
          report.skip(path, HIDDEN)
        continue
      if is_dir:
        folders.add(path)
        continue
      folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
      if posixpath.splitext(path)[1].lower() not in IMAGE_EXTENSIONS:
        report.skip(path, NOT_IMAGE_EXT)
        continue
      if size > MAX_FILE_BYTES:
        report.skip(path, TOO_LARGE, f"{size / 2**20:.0f} MB file")
        continue
      entries.append(Entry(path, size, ref))
    for folder, n in sorted(hidden_dirs.items()):
      logging.warning("Skipped %s/ (%d files): %s", folder, n, HIDDEN)
    used = {posixpath.dirname(e.path) for e in entries}
    used = {"/".join(d.split("/")[:i]) for d in used for i in range(1, d.count("/") + 2)}
    for folder in sorted(folders - used):
      # Only report the top-most empty folder of an empty subtree.
      if posixpath.dirname(folder) in used or "/" not in folder:
        report.empty_folders.append(folder)
        logging.warning("Ignored empty folder %s/ (no image files)", folder)
    entries.sort(key=lambda e: e.path)
    return entries

  def _list_folder(self) -> Iterator[tuple[str, int, object, bool]]:
    for dirpath, dirnames, filenames in os.walk(self.path):
      dirnames.sort()
      rel_dir = pathlib.Path(dirpath).relative_to(self.path).as_posix()
      prefix = "" if rel_dir == "." else rel_dir + "/"
      for d in dirnames:
        yield _nfc(prefix + d), 0, None, True
      for f in sorted(filenames):
        full = pathlib.Path(dirpath, f)
        try:
          size = full.stat().st_size
        except OSError:  # dangling symlink
          size = -1
        yield _nfc(prefix + f), size, full, False

  def _list_zip(self) -> Iterator[tuple[str, int, object, bool]]:
    for info in self._zip.infolist():
      name = info.filename
      if not info.flag_bits & 0x800:
        # No UTF-8 flag: zipfile decoded cp437; most such archives are really UTF-8.
        try:
          name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
          pass
      name = _nfc(name.replace("\\", "/"))
      yield name.rstrip("/"), info.file_size, info, info.is_dir()


def _nfc(path: str) -> str:
  return unicodedata.normalize("NFC", path)


def _unsafe(path: str) -> str:
  """Why an archive path is unsafe ('' when it is fine)."""
  if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
    return "absolute path"
  if ".." in path.split("/"):
    return "'..' component"
  return ""


# ---------------------------------------------------------------- layout


@dataclasses.dataclass
class Layout:
  """Which split and class each usable entry belongs to."""
  splits: dict  # split name -> list of (Entry, relative path, class name)
  class_names: list


def plan_layout(entries: list[Entry], source_name: str, report: Report) -> Layout:
  """Finds the root, the splits and each image's class (see module docstring)."""
  parts = [e.path.split("/") for e in entries]
  root = 0
  # Look through single wrapper folders, as long as the images stay in folders.
  while parts and all(len(p) > root + 2 for p in parts) and len({p[root] for p in parts}) == 1:
    root += 1
  tops = {p[root].lower() for p in parts if len(p) > root + 1}
  split_layout = bool(parts) and all(len(p) > root + 1 for p in parts) and tops <= set(
      SPLIT_NAMES)
  root_name = parts[0][root - 1] if root and parts else source_name
  splits = collections.defaultdict(list)
  for e, p in zip(entries, parts):
    rel = "/".join(p[root:])
    if split_layout:
      split = SPLIT_NAMES[p[root].lower()]
      if len(p) < root + 3:
        report.skip(e.path, NO_CLASS, f"images in {p[root]}/ must be in a class folder")
        continue
    else:
      split = "train"
    label = p[-2] if len(p) > root + 1 else root_name
    splits[split].append((e, rel, label))
  names = sorted({label for items in splits.values() for _, _, label in items})
  return Layout(dict(sorted(splits.items())), names)


# -------------------------------------------------------------- decoding


def load_square(data: bytes, size: int, resize: str) -> tuple[np.ndarray, list]:
  """Decodes one photo to uint8 RGB [size, size, 3]; returns it and its conversions.

  `resize` is "center_crop" (largest centred square, then Lanczos) or "pad"
  (pad to a square with the border's median colour, then Lanczos). Raises
  BadImage with the reason when the file cannot be used.
  """
  if not data:
    raise BadImage(EMPTY)
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)
      image = Image.open(io.BytesIO(data))
      _draft(image, size, resize)
      image.load()
  except Image.DecompressionBombError as e:
    raise BadImage(TOO_LARGE, str(e)) from e
  except Image.UnidentifiedImageError as e:
    raise BadImage(NOT_IMAGE, "no image format recognised") from e
  except Exception as e:  # pylint: disable=broad-except  # any decoder failure
    raise BadImage(CORRUPT, f"{type(e).__name__}: {e}") from e
  try:
    image = ImageOps.exif_transpose(image)
  except Exception:  # pylint: disable=broad-except  # a broken EXIF block: keep as stored
    pass
  image, conversions = _to_rgb(image)
  if image.width < 1 or image.height < 1:
    raise BadImage(CORRUPT, "zero-sized image")
  return _square(image, size, resize), conversions


def _draft(image: Image.Image, size: int, resize: str):
  """Lets the JPEG decoder downscale big photos by 2-8x while keeping 2x headroom."""
  if image.format != "JPEG":
    return
  w, h = image.size
  side = min(w, h) if resize == "center_crop" else max(w, h)
  scale = 2 * size / side
  if scale < 0.5:
    image.draft(image.mode, (int(w * scale) + 1, int(h * scale) + 1))


def _to_rgb(image: Image.Image) -> tuple[Image.Image, list]:
  mode = image.mode
  if mode == "RGB":
    return image, []
  if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
    # 16-bit greyscale: Pillow's convert would clip at 255; scale instead.
    a = np.asarray(image).astype(np.uint32)
    a = (a >> 8) if mode != "I" or a.max() > 255 else a
    grey = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return grey.convert("RGB"), ["16-bit"]
  if mode == "P" and "transparency" in image.info:
    image, mode = image.convert("RGBA"), "RGBA"
  if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB"), ["alpha on white"]
  names = {"L": "greyscale", "1": "greyscale", "P": "palette", "CMYK": "CMYK",
           "YCbCr": "YCbCr"}
  if mode not in names:
    raise BadImage(UNSUPPORTED, f"mode {mode}")
  return image.convert("RGB"), [names[mode]]


def _square(image: Image.Image, size: int, resize: str) -> np.ndarray:
  w, h = image.size
  if resize == "center_crop":
    s = min(w, h)
    box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    out = image.resize((size, size), Image.Resampling.LANCZOS, box=box)
  elif resize == "pad":
    s = max(w, h)
    a = np.asarray(image)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    fill = tuple(int(c) for c in np.median(border, axis=0))
    canvas = Image.new("RGB", (s, s), fill)
    canvas.paste(image, ((s - w) // 2, (s - h) // 2))
    out = canvas.resize((size, size), Image.Resampling.LANCZOS)
  else:
    raise ValueError(f"resize must be one of {RESIZE_METHODS}, got {resize!r}")
  return np.asarray(out, dtype=np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
  """Lossless PNG of a uint8 RGB array; fast zlib level (it releases the GIL)."""
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
  return buffer.getvalue()
