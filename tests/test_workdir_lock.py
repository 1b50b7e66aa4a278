"""One trainer per workdir: a live holder refuses the next, a killed one does not."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from gemgan import workdir_lock
from tests.conftest import REPO_ROOT

HOLD = textwrap.dedent("""
    import sys
    from gemgan import workdir_lock
    with workdir_lock.WorkdirLock(sys.argv[1]):
      print("held", flush=True)
      sys.stdin.read()  # until the test closes it, or kills us
""")


@pytest.fixture
def holder(tmp_path):
  """Another process holding tmp_path's lock."""
  child = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO_ROOT,
                           env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  assert child.stdout.readline().strip() == "held"
  yield child
  if child.poll() is None:
    child.kill()
  child.wait(timeout=30)


def test_a_second_trainer_is_refused_naming_the_holder(tmp_path, holder):
  with pytest.raises(workdir_lock.WorkdirLocked,
                     match=rf"another trainer is using .*PID {holder.pid} on host"):
    with workdir_lock.WorkdirLock(str(tmp_path)):
      pass
  record = json.loads((tmp_path / workdir_lock.LOCK_NAME).read_text())
  assert record["pid"] == holder.pid and record["host"] and record["start_time"]


def test_the_lock_of_a_killed_trainer_is_taken_over(tmp_path, holder, caplog):
  holder.send_signal(signal.SIGKILL)
  holder.wait(timeout=30)
  with workdir_lock.WorkdirLock(str(tmp_path)):
    record = json.loads((tmp_path / workdir_lock.LOCK_NAME).read_text())
    assert record["pid"] == os.getpid()
  assert f"Taking over {tmp_path / workdir_lock.LOCK_NAME}" in caplog.text
  assert f"PID {holder.pid}" in caplog.text and "no longer running" in caplog.text


def test_a_released_lock_is_taken_quietly(tmp_path, holder, caplog):
  holder.stdin.close()  # the holder finishes and releases
  holder.wait(timeout=30)
  with workdir_lock.WorkdirLock(str(tmp_path)):
    pass
  assert "Taking over" not in caplog.text
