"""Entry point: `python -m gemgan.main --config=configs/wgan_gp.py[:preset] --workdir=DIR`.

Any config value can be overridden, e.g. `--config.batch_size=32`. Several
processes (hosts) train one model with `--distributed`: on SLURM, Open MPI
and other clusters JAX finds its peers itself; elsewhere start one process
per host with `--coordinator_address=HOST:PORT --num_processes=N
--process_id=I`. The workdir (and data_dir) should be on shared storage.

The console shows gemgan's lines only (gemgan.console's tick line every
log_every_steps or log_every_secs); `--verbose` brings back other libraries'
start-up and INFO logs. A failure ends with one line naming what went wrong
(a bad config value, a refused resume, a failed save, a divergence, a busy
workdir) as the last thing printed, and exit code 1 (gemgan.cli).
"""
import traceback

from gemgan import cli

cli.hush_native_logs()  # before TensorFlow loads

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from gemgan import checkpointing
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
cli.define_flags()
flags.mark_flags_as_required(["config", "workdir"])


# gemgan's own errors: their message says it all, so no traceback.
_CLEAR_ERRORS = (config_lib.ConfigError, checkpointing.CheckpointError,
                 train.TrainingDiverged, workdir_lock.WorkdirLocked)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.setup_logging(FLAGS.verbose)
  if FLAGS.distributed:
    # CPU processes need a collectives library to talk; GPUs use NCCL anyway.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                               FLAGS.process_id)
  logging.info("JAX %s on %s: %d local / %d global devices, process %d of %d", jax.__version__,
               jax.default_backend(), jax.local_device_count(), jax.device_count(),
               jax.process_index(), jax.process_count())
  try:
    with cli.failing_clearly(*_CLEAR_ERRORS):
      train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except Exception as e:  # pylint: disable=broad-except
    traceback.print_exc()
    cli.fail(f"training failed: {type(e).__name__}: {e}")


if __name__ == "__main__":
  app.run(main)
