"""A dataset added to gemgan as one module (tests/test_dataset_registry.py trains on it).

Solid-colour squares in two classes: picture i has red 8 * i, green 200 - 8 * i,
and blue 60 for "warm" (even i) or 180 for "cool" (odd i), so a test can tell
each picture and its label from its pixels.
"""
import numpy as np
import tensorflow_datasets as tfds

from gemgan.datasets import registry

NUM_EXAMPLES = 12
CLASSES = ("warm", "cool")
BLUE = (60, 180)


def colour(i: int) -> tuple[int, int, int]:
  return 8 * i, 200 - 8 * i, BLUE[i % 2]


class SolidSquares(registry.QuietPrepare, tfds.core.GeneratorBasedBuilder):
  """Squares of one colour; the config name is the side in pixels."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=str(s)) for s in (16, 32)]

  def _info(self) -> tfds.core.DatasetInfo:
    side = int(self.builder_config.name)
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(side, side, 3)),
        "label": tfds.features.ClassLabel(names=CLASSES)}))

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    side = int(self.builder_config.name)
    for i in range(NUM_EXAMPLES):
      yield i, {"image": np.full((side, side, 3), colour(i), np.uint8), "label": i % 2}


@registry.register("solid_squares")
def source(data, data_dir: str) -> registry.Source:
  return registry.Source(SolidSquares(config=str(data.image_size), data_dir=data_dir))
