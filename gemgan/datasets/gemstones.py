"""`gemstones`: gem photos from a folder or a .zip, as a TFDS dataset.

Input (the manual dir, or `DownloadConfig(manual_dir=...)`): a folder or a
`.zip` holding either layout users download:

* Kaggle "Gemstones Images" (`Gemstones.zip`): `train/` and `test/`, each with
  87 class folders -> splits `train` and `test`;
* the 88-class "expanded" set, or any folder of photos: class folders at the
  top -> one `train` split.

A folder that holds no images but one `.zip` is read through the zip, so the
TFDS default `<data_dir>/downloads/manual/Gemstones.zip` works too. The class
is the folder that holds the image; labels are the sorted class names.

Resizing: square configs `32`, `64`, `96` (default, as the original notebook),
`128`, `256`, each with Lanczos. `center_crop` (the default: configs named by
size alone) takes the largest centred square; `pad` (configs `<size>_pad`)
pads to a square with the photo's border colour. Centre crop is the default
because the stones are centred and 90% of the photos have an aspect ratio of
at most 1.15, so a crop loses a little background and nothing else, while
padding would teach the generator flat bands that no real photo has; `pad` is
there for sets with long stones (marquise, baguette) photographed wide.

Preparation is deterministic and offline: sorted input, keys are relative
paths, no network (pass `try_download_gcs=False`). Every unusable file is
skipped with a warning naming it and the reason; the summary (kept, skipped
by reason, converted) is logged and stored in `info.metadata["report"]`.
"""
import collections
import concurrent.futures
import dataclasses
import os
import zipfile

from absl import logging
from etils import epath
import tensorflow_datasets as tfds

from gemgan.datasets import image_files
from gemgan.datasets import registry

SIZES = (32, 64, 96, 128, 256)  # 32 is for tests and quick runs
_WORKERS = max(1, min(8, os.cpu_count() or 1))

_INSTRUCTIONS = """\
Download the Kaggle "Gemstones Images" archive (Gemstones.zip, folders train/
and test/), or the 88-class expanded set, or use any folder of photos with one
sub-folder per class. Then either
  * set config.data.manual_dir to the .zip or to the extracted folder
    (gemgan: --config.data.manual_dir=/path/to/Gemstones.zip), or
  * with plain TFDS, pass
    tfds.download.DownloadConfig(manual_dir='/path/to/Gemstones.zip'), or put
    the .zip into <data_dir>/downloads/manual/.
"""


@dataclasses.dataclass(eq=False)
class GemstonesConfig(tfds.core.BuilderConfig):
  """Square size and how a non-square photo becomes square."""
  image_size: int = 96
  resize: str = "center_crop"  # or "pad"


def config_name(image_size: int, resize: str = "center_crop") -> str:
  return f"{image_size}" if resize == "center_crop" else f"{image_size}_{resize}"


def make_config(image_size: int, resize: str = "center_crop") -> GemstonesConfig:
  """The registered config for (size, resize), or a custom one with the same naming."""
  if resize not in image_files.RESIZE_METHODS:
    raise ValueError(f"resize must be one of {image_files.RESIZE_METHODS}, got {resize!r}")
  name = config_name(image_size, resize)
  for c in Gemstones.BUILDER_CONFIGS:
    if c.name == name:
      return c
  return GemstonesConfig(name=name, image_size=image_size, resize=resize,
                         description=f"{image_size}x{image_size}, {resize}")


class Gemstones(registry.QuietPrepare, tfds.core.GeneratorBasedBuilder):
  """Gem photos, one class per folder, resized to squares."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  BUILDER_CONFIGS = [
      GemstonesConfig(name=config_name(s, r), image_size=s, resize=r,
                      description=f"{s}x{s}, {r}")
      for s in SIZES for r in image_files.RESIZE_METHODS
  ]
  DEFAULT_BUILDER_CONFIG_NAME = "96"

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.image_size
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.split("\n\n")[0],
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(s, s, 3), encoding_format="png"),
            # Names are the class folders found, set when preparing.
            "label": tfds.features.ClassLabel(),
            "filename": tfds.features.Text(),
        }),
        supervised_keys=("image", "label"),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    source = image_files.Source(_manual_input(dl_manager))
    report = image_files.Report(str(source.path))
    logging.info("gemstones: reading %s (%s, %dx%d)", source.path,
                 "zip" if source.is_zip else "folder", self.builder_config.image_size,
                 self.builder_config.image_size)
    layout = image_files.plan_layout(source.list(report), source.name, report)
    if not layout.splits:
      source.close()
      raise ValueError(f"No image files in {source.path} (looked for "
                       f"{', '.join(sorted(image_files.IMAGE_EXTENSIONS))} in every folder"
                       f"{' of the zip' if source.is_zip else ''}); {report.summary()}")
    self.info.features["label"].names = layout.class_names
    logging.info("gemstones: %d classes; splits %s", len(layout.class_names),
                 {k: len(v) for k, v in layout.splits.items()})
    remaining = collections.Counter(layout.splits.keys())
    return {split: self._generate_examples(source, items, split, report, remaining)
            for split, items in layout.splits.items()}

  def _generate_examples(self, source, items, split, report, remaining):
    """Decodes and resizes in threads (Pillow releases the GIL), in input order."""
    cfg = self.builder_config

    def work(item):
      entry, rel, label = item
      try:
        data = source.read(entry)
      except (OSError, zipfile.BadZipFile, EOFError) as e:
        return item, None, image_files.BadImage(image_files.CORRUPT, f"cannot read: {e}")
      try:
        image, conversions = image_files.load_square(data, cfg.image_size, cfg.resize)
        return item, (image_files.png_bytes(image), conversions), None
      except image_files.BadImage as e:
        return item, None, e

    with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:
      for (entry, rel, label), result, error in _ordered_map(pool, work, items, 4 * _WORKERS):
        if error is not None:
          report.skip(entry.path, error.reason, error.detail)
          continue
        image, conversions = result
        report.convert(entry.path, conversions)
        report.kept[split] += 1
        yield rel, {"image": image, "label": label, "filename": rel}

    remaining[split] -= 1
    logging.info("gemstones %s: kept %d of %d images", split, report.kept[split], len(items))
    if not +remaining:  # the last split: the whole summary
      source.close()
      self.info.metadata["report"] = report.as_dict()
      logging.info("gemstones summary: %s", report.summary())
      if not sum(report.kept.values()):
        raise ValueError(f"No usable images in {source.path}: {report.summary()}")


@registry.register("gemstones")
def source(data, data_dir: str) -> registry.Source:
  """config.data -> the builder of its size and resize, reading config.data.manual_dir."""
  builder = Gemstones(config=make_config(data.image_size, data.resize), data_dir=data_dir)
  manual_dir = os.path.abspath(os.path.expanduser(data.manual_dir))
  return registry.Source(builder, tfds.download.DownloadConfig(manual_dir=manual_dir,
                                                               try_download_gcs=False))


def _ordered_map(pool, fn, items, window):
  """pool.map with at most `window` items in flight (bounded memory), in order."""
  pending = collections.deque()
  for item in items:
    pending.append(pool.submit(fn, item))
    if len(pending) >= window:
      yield pending.popleft().result()
  while pending:
    yield pending.popleft().result()


def _manual_input(dl_manager) -> epath.Path:
  """The configured manual input: a folder, a .zip, or a folder holding one .zip."""
  # `dl_manager.manual_dir` insists on a non-empty folder, but a .zip file is
  # a fine input too, so read the configured path itself.
  path = dl_manager._manual_dir  # pylint: disable=protected-access
  if path is None or not path.exists():
    raise FileNotFoundError(
        f"gemstones: no input at {path}. {_INSTRUCTIONS}")
  if path.is_dir():
    visible = [p for p in path.iterdir() if not p.name.startswith(".")]
    zips = [p for p in visible if p.suffix.lower() == ".zip" and p.is_file()]
    if len(zips) == 1 and all(p == zips[0] or p.is_file() for p in visible) and not any(
        p.suffix.lower() in image_files.IMAGE_EXTENSIONS for p in visible):
      return zips[0]
  return path
