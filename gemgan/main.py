"""Entry point: `python -m gemgan.main --config=configs/wgan_gp.py[:preset] --workdir=DIR`.

Any config value can be overridden, e.g. `--config.batch_size=32`. Several
processes (hosts) train one model with `--distributed`: on SLURM, Open MPI
and other clusters JAX finds its peers itself; elsewhere start one process
per host with `--coordinator_address=HOST:PORT --num_processes=N
--process_id=I`. The workdir (and data_dir) should be on shared storage.

A failure ends with one line naming what went wrong (a bad config value, a
refused resume, a failed save, a divergence, a busy workdir) as the last
thing printed, and exit code 1.
"""
import logging as pylogging
import os
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from gemgan import checkpointing
from gemgan import cli
from gemgan import config_lib
from gemgan import train
from gemgan import workdir_lock

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go; rerun to resume.")
config_flags.DEFINE_config_file("config", None, "Training config file (and :preset).",
                                lock_config=True)
flags.DEFINE_bool("distributed", False, "Run as one of several processes "
                  "(jax.distributed.initialize); see the module docstring.")
flags.DEFINE_string("coordinator_address", None, "With --distributed: process 0's HOST:PORT.")
flags.DEFINE_integer("num_processes", None, "With --distributed: how many processes.")
flags.DEFINE_integer("process_id", None, "With --distributed: this process's index.")
flags.mark_flags_as_required(["config", "workdir"])


# gemgan's own errors: their message says it all, so no traceback.
_CLEAR_ERRORS = (config_lib.ConfigError, checkpointing.CheckpointError,
                 train.TrainingDiverged, workdir_lock.WorkdirLocked)


_fail = cli.fail  # one clear line, exit 1 (shared by every command-line tool)


class _QuietLibraries(pylogging.Filter):
  """Drops Orbax's and TFDS's INFO chatter; their warnings still show."""

  def filter(self, record):
    return record.levelno >= pylogging.WARNING or not any(
        part in record.pathname for part in ("/orbax/", "/tensorflow_datasets/"))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if FLAGS.distributed:
    # CPU processes need a collectives library to talk; GPUs use NCCL anyway.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                               FLAGS.process_id)
  logging.info("JAX %s on %s: %d local / %d global devices, process %d of %d", jax.__version__,
               jax.default_backend(), jax.local_device_count(), jax.device_count(),
               jax.process_index(), jax.process_count())
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except _CLEAR_ERRORS as e:
    _fail(f"{type(e).__name__}: {e}")
  except Exception as e:  # pylint: disable=broad-except
    traceback.print_exc()
    _fail(f"training failed: {type(e).__name__}: {e}")


if __name__ == "__main__":
  app.run(main)
