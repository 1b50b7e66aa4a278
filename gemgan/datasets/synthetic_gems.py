"""`synthetic_gems`: procedurally rendered gem pictures, no input files.

The embedded default for a first run and for tests: cut stones (round, oval,
cushion, pear, marquise, emerald, princess, trillion) and cabochons (plain,
cat's-eye, banded) in many colours on plain light, grey and dark backgrounds;
the label is the kind (see `gem_render.KINDS`). Rendering is in
`gem_render.py`; picture i depends only on (seed, i).

Configs: `32`, `64`, `96` (default), `128`, each 4,096 pictures from seed 0.
The size and count are part of the config because TFDS caches prepared data
per config name: anything that changes the records must change the name. Other
counts or seeds get a custom config from `make_config(size, num_examples,
seed)`, named `<size>_n<count>` (plus `_seed<seed>` when not 0), e.g. tests
use `make_config(32, 48)`.
"""
import concurrent.futures
import dataclasses

import tensorflow_datasets as tfds

from gemgan.datasets import gem_render
from gemgan.datasets import image_files
from gemgan.datasets import registry

SIZES = (32, 64, 96, 128)
DEFAULT_NUM_EXAMPLES = 4096
_CHUNK = 512  # pictures rendered per call while writing


@dataclasses.dataclass(eq=False)
class SyntheticGemsConfig(tfds.core.BuilderConfig):
  image_size: int = 96
  num_examples: int = DEFAULT_NUM_EXAMPLES
  seed: int = 0


def config_name(image_size: int, num_examples: int = DEFAULT_NUM_EXAMPLES,
                seed: int = 0) -> str:
  name = f"{image_size}"
  if num_examples != DEFAULT_NUM_EXAMPLES:
    name += f"_n{num_examples}"
  if seed:
    name += f"_seed{seed}"
  return name


def make_config(image_size: int, num_examples: int = DEFAULT_NUM_EXAMPLES,
                seed: int = 0) -> SyntheticGemsConfig:
  """The registered config for these values, or a custom one named the same way."""
  if num_examples < 1:
    raise ValueError(f"num_examples must be >= 1, got {num_examples}")
  if seed < 0:
    raise ValueError(f"seed must be >= 0, got {seed}")
  name = config_name(image_size, num_examples, seed)
  for c in SyntheticGems.BUILDER_CONFIGS:
    if c.name == name:
      return c
  return SyntheticGemsConfig(name=name, image_size=image_size, num_examples=num_examples,
                             seed=seed, description=_describe(image_size, num_examples, seed))


def _describe(size, n, seed):
  return f"{n} pictures, {size}x{size}, seed {seed}"


class SyntheticGems(registry.QuietPrepare, tfds.core.GeneratorBasedBuilder):
  """Rendered gem pictures with a label per kind."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      SyntheticGemsConfig(name=config_name(s), image_size=s,
                          description=_describe(s, DEFAULT_NUM_EXAMPLES, 0))
      for s in SIZES
  ]
  DEFAULT_BUILDER_CONFIG_NAME = "96"

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.image_size
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.split("\n\n")[0],
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(s, s, 3), encoding_format="png"),
            "label": tfds.features.ClassLabel(names=gem_render.KINDS),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    """Renders the next chunk in a thread while this one is PNG-encoded (in threads)."""
    cfg = self.builder_config
    starts = range(0, cfg.num_examples, _CHUNK)
    render = lambda start: gem_render.render(  # noqa: E731
        cfg.seed, start, min(_CHUNK, cfg.num_examples - start), cfg.image_size)
    with concurrent.futures.ThreadPoolExecutor(1) as renderer, \
        concurrent.futures.ThreadPoolExecutor(2) as encoder:
      nxt = renderer.submit(render, starts[0])
      for k, start in enumerate(starts):
        images, labels = nxt.result()
        if k + 1 < len(starts):
          nxt = renderer.submit(render, starts[k + 1])
        for i, png in enumerate(encoder.map(image_files.png_bytes, images)):
          yield start + i, {"image": png, "label": labels[i]}


def _cache_name(data) -> str:
  return f"synthetic_gems_{data.image_size}px_{data.resize}_{data.num_examples}"


@registry.register("synthetic_gems", cache_name=_cache_name)
def source(data, data_dir: str) -> registry.Source:
  """config.data -> the builder of its size, count and seed (nothing to read)."""
  config = make_config(data.image_size, data.num_examples, data.get("seed", 0))
  return registry.Source(SyntheticGems(config=config, data_dir=data_dir))
