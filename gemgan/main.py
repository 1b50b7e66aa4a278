"""Entry point: `python -m gemgan.main --config=configs/wgan_gp.py[:preset] --workdir=DIR`.

Any config value can be overridden, e.g. `--config.batch_size=32`.
"""
import logging as pylogging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from gemgan import train

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go; rerun to resume.")
config_flags.DEFINE_config_file("config", None, "Training config file (and :preset).",
                                lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(pylogging.Filter):
  """Drops Orbax's and TFDS's INFO chatter; their warnings still show."""

  def filter(self, record):
    return record.levelno >= pylogging.WARNING or not any(
        part in record.pathname for part in ("/orbax/", "/tensorflow_datasets/"))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if os.environ.get("GEMGAN_DISTRIBUTED"):  # multi-host: coordinator from the environment
    jax.distributed.initialize()
  logging.info("JAX %s on %s: %d local / %d global devices, process %d of %d", jax.__version__,
               jax.default_backend(), jax.local_device_count(), jax.device_count(),
               jax.process_index(), jax.process_count())
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main)
