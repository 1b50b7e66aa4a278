"""Datasets by name: a new builder as one module, TFDS's fall-through, unknown names."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import dcgan
from gemgan import checkpointing
from gemgan import config_lib
from gemgan import datasets
from gemgan import input_pipeline
from gemgan import train
from tests import solid_squares  # registers "solid_squares"
from tests.tiny import tiny_config


class GreyBars(tfds.core.GeneratorBasedBuilder):
  """A TFDS dataset gemgan does not register: grey, 12 x 20, unlabelled.

  Picture i is 4 black columns, 12 columns of grey 20 * i + 10, 4 black
  columns: its centred square is all grey, so a right crop shows no black.
  """
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(12, 20, 1))}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i in range(6):
      image = np.zeros((12, 20, 1), np.uint8)
      image[:, 4:16] = 20 * i + 10
      yield i, {"image": image}


def _config(data_dir, name, conditional=True):
  """The quickest loop there is: DCGAN, 16 px, width 4, 2 steps."""
  c = tiny_config(dcgan, "quick", num_train_steps=2, log_every_steps=1, sample_every_steps=2,
                  checkpoint_every_steps=2, num_sample_grid=4)
  c.data.name, c.data.data_dir, c.model.conditional = name, str(data_dir), conditional
  return c


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("tfds")


def test_a_builder_in_one_module_loads_and_trains_conditionally(data_dir, tmp_path, capfd):
  config = _config(data_dir, "solid_squares")
  info = input_pipeline.load_dataset(config)
  assert "Downloading and preparing" not in capfd.readouterr().out
  assert info.name == "solid_squares/16" and info.num_examples == solid_squares.NUM_EXAMPLES
  assert info.num_classes == 2 and info.class_names == ["warm", "cool"]
  # Each picture is its colour everywhere, and its label is its blue's class.
  assert (info.images == info.images[:, :1, :1]).all()
  reds = sorted(info.images[:, 0, 0, 0] // 8)
  assert reds == list(range(solid_squares.NUM_EXAMPLES))
  for image, label in zip(info.images, info.labels):
    i = image[0, 0, 0] // 8
    assert tuple(image[0, 0]) == solid_squares.colour(i) and label == i % 2
  state = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert int(state.step) == 2
  meta = checkpointing.Checkpointer(str(tmp_path / "run" / "checkpoints")).read_meta()
  assert meta["num_classes"] == 2 and meta["class_names"] == ["warm", "cool"]


def test_any_other_name_is_a_tfds_dataset_made_square_and_rgb(data_dir):
  config = _config(data_dir, "grey_bars", conditional=False)
  info = input_pipeline.load_dataset(config)
  assert info.images.shape == (6, 16, 16, 3) and info.images.dtype == np.uint8
  # The centred 12 x 12 square, upsampled: grey everywhere, in all three channels.
  assert sorted(info.images[:, 0, 0, 0]) == [20 * i + 10 for i in range(6)]
  assert (info.images == info.images[:, :1, :1, :1]).all()
  assert info.num_classes == 0 and info.class_names == [] and (info.labels == 0).all()
  assert datasets.cache_name(config.data) == "grey_bars_16px_center_crop"
  config.data.name = "grey_bars:1.0.0"
  assert datasets.cache_name(config.data) == "grey_bars_1.0.0_16px_center_crop"
  with pytest.raises(config_lib.ConfigError, match="config.model.conditional: .*no labels"):
    input_pipeline.load_dataset(_config(data_dir, "grey_bars"))


def test_an_unknown_name_is_a_config_error_listing_the_registered_ones(data_dir):
  config = _config(data_dir, "no_such_set")
  assert {"gemstones", "solid_squares", "synthetic_gems"} <= set(datasets.names())
  message = (r"config.data.name: unknown dataset 'no_such_set': not registered in "
             rf"gemgan.datasets \(one of {', '.join(datasets.names())}\) and TFDS")
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.validate(config)
  with pytest.raises(config_lib.ConfigError, match=message):
    input_pipeline.load_dataset(config)
