"""Which dataset `config.data.name` means: gemgan's registry, then TFDS.

A dataset of gemgan's own is one module that defines a TFDS builder and
registers a function from `config.data` to a `Source` (the builder, and how
to prepare it without the network):

    @registry.register("solid_squares")
    def source(data, data_dir):
      return registry.Source(SolidSquares(config=..., data_dir=data_dir))

Importing the module registers it (`gemgan/datasets/__init__.py` imports the
built-in ones). Any other name goes to `tfds.builder(name)`, so a stock TFDS
dataset ("cifar10", "oxford_flowers102", "mnist:3.*.*") is a config value,
as in the Flax ImageNet example; its images are made square RGB of
`config.data.image_size` when loaded (see `input_pipeline`).
"""
import dataclasses
import os
import re
from typing import Callable, Optional

from absl import logging
import ml_collections
import tensorflow_datasets as tfds


class UnknownDatasetError(ValueError):
  """Neither the registry nor TFDS knows the name."""


@dataclasses.dataclass(frozen=True)
class Source:
  """One dataset as gemgan reads it.

  `builder` is unprepared; `download_config` prepares it offline (never from
  the TFDS GCS bucket; a manual dir where the builder reads local input).
  `image_key` names an Image feature; `label_key` a ClassLabel feature, or
  None for an unlabelled set (then every label is 0 and there are no classes).
  """
  builder: tfds.core.DatasetBuilder
  download_config: tfds.download.DownloadConfig = dataclasses.field(
      default_factory=lambda: tfds.download.DownloadConfig(try_download_gcs=False))
  image_key: str = "image"
  label_key: Optional[str] = "label"


SourceFn = Callable[[ml_collections.ConfigDict, str], Source]


@dataclasses.dataclass(frozen=True)
class _Entry:
  source: SourceFn
  cache_name: Optional[Callable[[ml_collections.ConfigDict], str]]


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, cache_name: Optional[Callable[[ml_collections.ConfigDict], str]] = None):
  """Decorator: `fn(config.data, data_dir) -> Source` serves `config.data.name == name`.

  `cache_name(config.data)` names its Inception feature cache (readable only:
  the cache is keyed by the images' fingerprint); the default is
  `<name>_<size>px_<resize>`.
  """
  def wrap(fn: SourceFn) -> SourceFn:
    if name in _REGISTRY and _REGISTRY[name].source is not fn:
      logging.warning("Dataset %r registered again, by %s.%s", name, fn.__module__,
                      fn.__qualname__)
    _REGISTRY[name] = _Entry(fn, cache_name)
    return fn
  return wrap


def names() -> tuple[str, ...]:
  """The registered dataset names, sorted."""
  return tuple(sorted(_REGISTRY))


def data_dir(data: ml_collections.ConfigDict) -> str:
  """config.data.data_dir, or TFDS's default (~/tensorflow_datasets)."""
  return os.path.expanduser(data.data_dir) if data.data_dir else tfds.core.constants.DATA_DIR


def source(data: ml_collections.ConfigDict) -> Source:
  """The Source that `config.data` names; UnknownDatasetError if nothing knows it."""
  entry = _REGISTRY.get(data.name)
  if entry is not None:
    return entry.source(data, data_dir(data))
  return _tfds_source(data.name, data_dir(data))


def check_name(data: ml_collections.ConfigDict) -> None:
  """Raises UnknownDatasetError unless the registry or TFDS knows config.data.name."""
  if data.name not in _REGISTRY:
    _tfds_source(data.name, data_dir(data))


def cache_name(data: ml_collections.ConfigDict) -> str:
  """Readable name of the real set's feature cache, e.g. 'gemstones_96px_center_crop'."""
  entry = _REGISTRY.get(data.name)
  if entry is not None and entry.cache_name is not None:
    return entry.cache_name(data)
  name = re.sub(r"[^A-Za-z0-9_.-]+", "_", data.name)  # "cifar10/plain:3.*" is no path
  return f"{name}_{data.image_size}px_{data.resize}"


def _tfds_source(name, directory) -> Source:
  """A stock TFDS dataset: its first Image feature ("image" first), its ClassLabel."""
  if not isinstance(name, str) or not name:
    raise UnknownDatasetError(f"must be a dataset name, got {name!r}")
  try:
    builder = tfds.builder(name, data_dir=directory, try_gcs=False)
  except (tfds.core.registered.DatasetNotFoundError, ValueError) as e:
    raise UnknownDatasetError(
        f"unknown dataset {name!r}: not registered in gemgan.datasets (one of "
        f"{', '.join(names())}) and TFDS says: {str(e).splitlines()[0]}") from None
  features = builder.info.features
  supervised = builder.info.supervised_keys or ()
  images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
  labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
  if not images:
    raise UnknownDatasetError(f"TFDS dataset {name!r} has no image feature "
                              f"(features: {', '.join(features.keys())})")
  image_key = next((k for k in ("image", *supervised[:1]) if k in images), images[0])
  label_key = next((k for k in ("label", *supervised[1:2]) if k in labels),
                   labels[0] if labels else None)
  return Source(builder, image_key=image_key, label_key=label_key)


class QuietPrepare:
  """Mixin for builders that read local input: TFDS's download lines, as log lines.

  TFDS prints "Downloading and preparing dataset Unknown size ..." and
  "... downloaded and prepared to ..." on stdout even when nothing is
  downloaded; this says what happens, in the log.
  """

  def _log_download_bytes(self) -> None:
    logging.info("Preparing %s/%s in %s (local input, nothing is downloaded)", self.name,
                 self.builder_config.name if self.builder_config else "", self.data_dir)

  def _log_download_done(self) -> None:
    logging.info("Prepared %s in %s", self.name, self.data_dir)
