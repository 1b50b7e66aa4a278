"""The one way a gemgan command-line tool fails: one clear line, exit 1, no traceback."""
import logging as pylogging
import os
import sys
import threading

from absl import logging


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
