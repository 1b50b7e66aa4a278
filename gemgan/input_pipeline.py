"""Training input: prepare a TFDS dataset, then serve reproducible batches.

Our sets are small (4,400 photos at 96 px are 122 MB of uint8), so the whole
split is loaded once into host memory when it is under `IN_MEMORY_MAX_BYTES`.
Which examples a step sees, and which of them are flipped, is then a pure
function of (seed, step): `batch_indices`, built from one seeded permutation
per epoch. The train loop's on-device path (it gathers from a device-resident
copy of `info.images`) and `create_train_iterator`'s tf.data path both use it,
so they give identical batches, and resuming at any step costs O(1) and sees
exactly what an unbroken run would have.

Bigger-than-memory sets stream from TFDS instead (see `_stream`): shuffled
with a seeded buffer, reproducible, but a resume replays the stream up to the
step, and batches differ from the in-memory path.
"""
import dataclasses
import functools
import os
import time
from typing import Callable, Iterator

from absl import logging
import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from gemgan import config_lib
from gemgan import datasets

# Hide GPUs from TF so that it never takes accelerator memory JAX needs (as the
# Flax examples do); TF only reads and decodes here.
try:
  tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # TF already initialised its devices elsewhere
  pass

IN_MEMORY_MAX_BYTES = 4 * 2**30  # uint8 images; bigger sets stream from disk
_SHUFFLE_BUFFER = 10_000  # streaming only


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """A prepared dataset and, when it fits in memory, all its examples."""
  name: str  # e.g. "gemstones/96"
  split: str  # TFDS split expression, e.g. "train+test"
  num_examples: int
  num_classes: int  # 0 for an unlabelled set
  class_names: list
  image_shape: tuple  # (H, W, 3)
  images: np.ndarray | None  # uint8 [N, H, W, 3], or None when streaming
  labels: np.ndarray | None  # int32 [N], or None when streaming
  builder: tfds.core.DatasetBuilder = dataclasses.field(repr=False)
  # A TFDS example -> {"image": uint8 image_shape, "label": int32}.
  decode: Callable[[dict], dict] = dataclasses.field(repr=False)


def get_source(config: ml_collections.ConfigDict) -> datasets.Source:
  """The dataset that `config.data` names (nothing is prepared yet); see gemgan.datasets."""
  try:
    return datasets.source(config.data)
  except datasets.UnknownDatasetError as e:
    raise config_lib.ConfigError(f"config.data.name: {e}") from None


def load_dataset(config: ml_collections.ConfigDict) -> DatasetInfo:
  """Prepares the dataset on first use (offline), loads it, logs a summary.

  Trains on `config.data.split` when set, else on all splits joined (the
  Kaggle archive's train/ and test/ together, as the original notebook did).
  """
  _prepare(get_source(config))
  source = get_source(config)  # a fresh builder reads the prepared info from disk
  builder = source.builder
  split = config.data.get("split", "") or "+".join(sorted(builder.info.splits.keys()))
  num_examples = builder.info.splits[split].num_examples
  label = builder.info.features[source.label_key] if source.label_key else None
  if label is None and config.model.get("conditional", False):
    raise config_lib.ConfigError(f"config.model.conditional: dataset {config.data.name!r} "
                                 "has no labels; train it unconditionally")
  size = config.data.image_size
  shape = (size, size, 3)
  decode = _decoder(source, size, config.data.resize)
  nbytes = num_examples * int(np.prod(shape))
  images = labels = None
  start = time.perf_counter()
  if nbytes <= IN_MEMORY_MAX_BYTES:
    images, labels = _load_all(builder, split, decode, num_examples, shape)
  config_name = f"/{builder.builder_config.name}" if builder.builder_config else ""
  info = DatasetInfo(name=builder.name + config_name, split=split, num_examples=num_examples,
                     num_classes=label.num_classes if label else 0,
                     class_names=list(label.names) if label else [], image_shape=shape,
                     images=images, labels=labels, builder=builder, decode=decode)
  logging.info("Dataset %s [%s] in %s: %d examples, %d classes, %s; %s", info.name, split,
               builder.data_dir, num_examples, info.num_classes, "x".join(map(str, shape)),
               f"{nbytes / 1e6:.1f} MB in memory (loaded in {time.perf_counter() - start:.1f} s)"
               if images is not None else
               f"{nbytes / 1e9:.1f} GB > {IN_MEMORY_MAX_BYTES / 2**30:.0f} GiB: streaming")
  _log_report(builder, info, config)
  return info


def _log_report(builder, info: DatasetInfo, config: ml_collections.ConfigDict) -> None:
  """A builder that read local input (gemstones) stored what it kept and skipped."""
  report = builder.info.metadata.get("report") if builder.info.metadata else None
  if not report:
    return
  logging.info("Prepared from %s: kept %s, skipped %s, converted %s", report["source"],
               report["kept"], report["skipped"] or "none", report["converted"] or "none")
  manual_dir = os.path.abspath(os.path.expanduser(config.data.manual_dir))
  source = report["source"]
  if source != manual_dir and not source.startswith(manual_dir + os.sep):
    logging.warning("config.data.manual_dir is %s, but %s was prepared from %s; delete %s "
                    "to prepare it again from the new input", manual_dir, info.name, source,
                    builder.data_dir)


def _decoder(source: datasets.Source, size: int, resize: str) -> Callable[[dict], dict]:
  """Example -> {"image": uint8 [size, size, 3], "label": int32 (0 when unlabelled)}.

  gemgan's builders store exactly that; other TFDS sets are made square RGB
  here (grey repeated, alpha dropped; `resize` as for gemstones, though "pad"
  pads with black, not the border colour).
  """
  feature = source.builder.info.features[source.image_key]
  ready = tuple(feature.shape) == (size, size, 3)

  def decode(example):
    image = example[source.image_key]
    if not ready:
      image = _square_rgb(image, feature.shape[-1], size, resize)
    label = (tf.cast(example[source.label_key], tf.int32) if source.label_key
             else tf.constant(0, tf.int32))
    return {"image": image, "label": label}
  return decode


def _square_rgb(image: tf.Tensor, channels: int, size: int, resize: str) -> tf.Tensor:
  """uint8 [H, W, C] -> uint8 [size, size, 3], antialiased bilinear."""
  if channels == 1:
    image = tf.image.grayscale_to_rgb(image)
  elif channels == 4:
    image = image[..., :3]
  if resize == "center_crop":
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(h, w)
    image = tf.image.crop_to_bounding_box(image, (h - side) // 2, (w - side) // 2, side, side)
    image = tf.image.resize(image, (size, size), antialias=True)
  else:
    image = tf.image.resize_with_pad(image, size, size, antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _load_all(builder, split, decode, num_examples, shape):
  """All examples of `split`, in TFDS's stored order, into one preallocated array."""
  images = np.empty((num_examples,) + shape, np.uint8)
  labels = np.empty(num_examples, np.int32)
  ds = builder.as_dataset(split=split, shuffle_files=False)
  ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(1024)
  filled = 0
  for batch in tfds.as_numpy(ds):
    n = len(batch["label"])
    images[filled:filled + n], labels[filled:filled + n] = batch["image"], batch["label"]
    filled += n
  if filled != num_examples:
    raise ValueError(f"{builder.name} [{split}]: read {filled} examples, its info says "
                     f"{num_examples}")
  return images, labels


def _prepare(source: datasets.Source):
  """download_and_prepare with the source's offline DownloadConfig; process 0 goes first."""
  prepare = functools.partial(source.builder.download_and_prepare,
                              download_config=source.download_config)
  if jax.process_count() == 1:
    prepare()
    return
  # Multi-host: one writer on shared storage; the others then find it (or,
  # with per-host disks, prepare their own copy).
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  if jax.process_index() == 0:
    prepare()
  multihost_utils.sync_global_devices("gemgan: dataset prepared")
  if jax.process_index() != 0:
    prepare()


# ------------------------------------------------------------------ batches

_SALT = 0x6A7E_D47A  # keeps these streams apart from other uses of config.seed


@functools.lru_cache(maxsize=4)
def _epoch(seed: int, epoch: int, num_examples: int):
  rng = np.random.default_rng([_SALT, seed, epoch])
  order = rng.permutation(num_examples).astype(np.int32)
  flips = rng.random(num_examples) < 0.5
  order.flags.writeable = flips.flags.writeable = False
  return order, flips


def batch_indices(seed: int, step: int, batch_size: int, num_examples: int,
                  batches_per_step: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """Example indices and flips for one step: int32 and bool [batches_per_step, batch_size].

  The global stream of examples is epoch after epoch, each a permutation of
  all examples from a generator keyed by (seed, epoch), with a coin per
  position for the horizontal flip; step s takes the next
  batches_per_step * batch_size of it, straddling epochs where it must. O(1)
  in `step`. Flips are returned regardless of config.data.random_flip: AND
  them with it.
  """
  if num_examples < 1 or batch_size < 1 or batches_per_step < 1:
    raise ValueError(f"need num_examples, batch_size, batches_per_step >= 1; got "
                     f"{num_examples}, {batch_size}, {batches_per_step}")
  seed = int(seed) % 2**64
  total = batch_size * batches_per_step
  position = int(step) * total
  indices = np.empty(total, np.int32)
  flips = np.empty(total, bool)
  filled = 0
  while filled < total:
    epoch, offset = divmod(position + filled, num_examples)
    take = min(num_examples - offset, total - filled)
    order, coin = _epoch(seed, epoch, num_examples)
    indices[filled:filled + take] = order[offset:offset + take]
    flips[filled:filled + take] = coin[offset:offset + take]
    filled += take
  shape = (batches_per_step, batch_size)
  return indices.reshape(shape), flips.reshape(shape)


def _per_process_batch(config: ml_collections.ConfigDict) -> int:
  if config.batch_size % jax.process_count():
    raise ValueError(f"config.batch_size={config.batch_size} is not divisible by the "
                     f"{jax.process_count()} processes")
  return config.batch_size // jax.process_count()


def process_batch_indices(config: ml_collections.ConfigDict, step: int,
                          num_examples: int) -> tuple[np.ndarray, np.ndarray]:
  """This process's share of `batch_indices` for `step`: columns
  [p * B, (p + 1) * B) of the global batch, B = batch_size / process_count;
  flips already ANDed with config.data.random_flip. [n_critic, B] each."""
  per_process = _per_process_batch(config)
  lo = jax.process_index() * per_process
  index, flip = batch_indices(config.seed, step, config.batch_size, num_examples,
                              config.n_critic)
  return (index[:, lo:lo + per_process],
          flip[:, lo:lo + per_process] & bool(config.data.random_flip))


def create_train_iterator(config: ml_collections.ConfigDict, info: DatasetInfo,
                          start_step: int = 0) -> Iterator[dict]:
  """Batches for steps start_step, start_step + 1, ... as numpy dicts.

  Each item: 'image' float32 [n_critic, B, H, W, 3] in [-1, 1] and 'label'
  int32 [n_critic, B], where B = config.batch_size / jax.process_count() is
  this process's slice of the global batch (process p takes columns
  [p * B, (p + 1) * B) of `batch_indices`).
  """
  per_process = _per_process_batch(config)
  if info.images is None:
    return _stream(config, info, start_step, per_process)
  images, labels = info.images, info.labels

  def host_batch(step):
    index, flip = process_batch_indices(config, step, info.num_examples)
    x = images[index]
    x = np.where(flip[..., None, None, None], x[..., ::-1, :], x)
    return x, labels[index]

  shape = (config.n_critic, per_process)
  ds = tf.data.Dataset.counter(start=start_step)
  ds = ds.map(lambda step: tf.numpy_function(host_batch, [step], (tf.uint8, tf.int32),
                                             stateful=False),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.map(lambda x, y: {"image": _to_float(tf.ensure_shape(x, shape + info.image_shape)),
                            "label": tf.ensure_shape(y, shape)})
  return iter(tfds.as_numpy(ds.prefetch(2)))


def _to_float(x: tf.Tensor) -> tf.Tensor:
  """uint8 -> float32 in [-1, 1], the same arithmetic as the on-device path."""
  return tf.cast(x, tf.float32) / 127.5 - 1.0


def _stream(config, info, start_step, per_process):
  """Bigger-than-memory sets: a seeded shuffle buffer over this process's files."""
  logging.warning("Streaming %s: resuming at step %d replays the stream up to it", info.name,
                  start_step)
  seed = int(config.seed) % 2**31
  read_config = tfds.ReadConfig(shuffle_seed=seed, shuffle_reshuffle_each_iteration=True)
  ds = info.builder.as_dataset(split=tfds.split_for_jax_process(info.split, drop_remainder=True),
                               shuffle_files=True, read_config=read_config)
  ds = ds.repeat().shuffle(_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)

  def prepare(i, example):
    example = info.decode(example)
    image = example["image"]
    if config.data.random_flip:
      image = tf.image.stateless_random_flip_left_right(
          image, seed=tf.stack([tf.constant(seed, tf.int64), i]))
    return {"image": _to_float(image), "label": example["label"]}

  ds = ds.enumerate().map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(per_process, drop_remainder=True).batch(config.n_critic, drop_remainder=True)
  return iter(tfds.as_numpy(ds.skip(start_step).prefetch(2)))
