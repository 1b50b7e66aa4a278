"""What every gemgan command line shares: one log filter, one way to fail.

  cli.hush_native_logs()          # first thing, before TensorFlow or JAX load
  ...
  def main(argv):
    cli.setup_logging(FLAGS.verbose)
    with cli.failing_clearly(MyToolError, ValueError):
      ...

- Other libraries' start-up chatter is off unless `--verbose`: TensorFlow's
  C++ lines (oneDNN notices, written before its log level is read, so its
  import runs with stderr closed), absl/INFO records from other libraries'
  files (Orbax's per-save lines, TFDS's builder notes, JAX's "Unable to
  initialize backend 'tpu'"), JAX's backend warnings ("An NVIDIA GPU may be
  present..."), TFDS's progress bars and prints.
- A user's mistake (a bad config value, a workdir with no checkpoints, an
  output path that cannot be written) ends with one line naming it, the last
  thing printed, and exit code 1; any other exception keeps its traceback.
"""
import contextlib
import logging as pylogging
import os
import sys
import threading

from absl import flags
from absl import logging

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_PACKAGE)
# Where gemgan's own records come from (the package, configs, yardsticks).
_OWN = tuple(os.path.join(_ROOT, d) + os.sep for d in ("gemgan", "configs", "benchmarks"))
# (file path part, message part) of other libraries' warnings that are chatter.
_CHATTER = (("/jax/_src/xla_bridge.py", ""),  # no TPU / no CUDA jaxlib: backend guesses
            ("/tensorflow_datasets/", "Using custom data configuration"),
            ("/orbax/", "read_only"), ("/orbax/", "read only"))


def verbose_requested(argv=None) -> bool:
  """Whether --verbose is on the command line (read before flags are parsed:
  TensorFlow's log level must be set before it loads)."""
  return any(a in ("--verbose", "--verbose=true", "--verbose=True")
             for a in (sys.argv if argv is None else argv))


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """The flags every tool has."""
  flags.DEFINE_bool("verbose", False, "Also show other libraries' start-up and INFO logs "
                    "(TensorFlow, TFDS, Orbax, JAX backends).", flag_values=flag_values)


def hush_native_logs(verbose: bool | None = None) -> None:
  """Unless verbose, hides TensorFlow's C++ start-up lines: sets
  TF_CPP_MIN_LOG_LEVEL and imports TensorFlow (if installed) with stderr closed."""
  if verbose_requested() if verbose is None else verbose:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if "tensorflow" in sys.modules:
    return
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    try:
      import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      pass
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


class LibraryChatter(pylogging.Filter):
  """Keeps gemgan's records, and other libraries' warnings but known chatter."""

  def filter(self, record):
    if record.pathname.startswith(_OWN):
      return True
    if record.levelno < pylogging.WARNING:
      return False
    message = record.getMessage()
    return not any(part in record.pathname and text in message for part, text in _CHATTER)


class _Compact(pylogging.Formatter):
  """`HH:MM:SS message`; warnings and errors say so."""

  def format(self, record):
    level = "" if record.levelno < pylogging.WARNING else record.levelname + " "
    return f"{self.formatTime(record, '%H:%M:%S')} {level}{record.getMessage()}"


def setup_logging(verbose: bool) -> None:
  """The console of every tool: gemgan's lines, compact; others' chatter off
  unless `verbose` (then absl's full format and every library's records)."""
  if verbose:
    return
  from gemgan import console  # pylint: disable=g-import-not-at-top
  console.hush_libraries = True
  handler = logging.get_absl_handler()
  handler.addFilter(LibraryChatter())
  handler.setFormatter(_Compact())
  if "tensorflow_datasets" in sys.modules:
    sys.modules["tensorflow_datasets"].disable_progress_bar()


def fail(message: str) -> None:
  """Logs `message` as the last line and exits 1 at once.

  os._exit, after flushing: a normal exit after a failed save lets Orbax's
  writer threads print dozens of "Exception ignored ... sys.meta_path is
  None" tracebacks at interpreter shutdown, burying the message. Records
  from other threads (Orbax's, still failing) are dropped from here on.
  """
  main_thread = threading.main_thread().ident
  logging.get_absl_handler().addFilter(lambda record: record.thread == main_thread)
  logging.error("%s", " ".join(message.split("\n")))
  logging.flush()
  for handler in pylogging.getLogger().handlers + [logging.get_absl_handler()]:
    handler.flush()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(1)  # pylint: disable=protected-access


@contextlib.contextmanager
def failing_clearly(*clear_errors: type):
  """Turns `clear_errors` (a user's mistake, whose message says it all) into
  one line and exit 1 (`fail`); other exceptions pass with their traceback."""
  try:
    yield
  except clear_errors as e:  # pylint: disable=catching-non-exception
    fail(f"{type(e).__name__}: {e}")
