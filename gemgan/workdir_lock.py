"""One trainer per workdir: `<workdir>/trainer.lock` names its holder.

Two trainers on one workdir would write the same checkpoints, metrics.jsonl
and TensorBoard files. The lock is an `fcntl.flock` on the file (released by
the kernel when its process dies, `kill -9` included, so a stale lock can
never block), and the file says who holds it: host, PID and start time, so a
refused trainer can name the holder. A lock file whose holder is gone (its
PID dead on this host, or the flock free) is taken over with a warning.
Network filesystems without working flock fall back on the PID check.
"""
import fcntl
import json
import os
import socket
import time
from typing import Optional

from absl import logging

LOCK_NAME = "trainer.lock"


class WorkdirLocked(RuntimeError):
  """Another live trainer holds the workdir."""


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process: alive
    return True
  return True


def _describe(holder: dict) -> str:
  return (f"PID {holder.get('pid')} on host {holder.get('host')}, started "
          f"{holder.get('start_time')}")


def _read(fd: int) -> Optional[dict]:
  os.lseek(fd, 0, os.SEEK_SET)
  text = os.read(fd, 1 << 16).decode(errors="replace").strip()
  if not text:
    return None  # released cleanly, or never written
  try:
    return json.loads(text)
  except ValueError:
    return {"pid": "?", "host": "?", "start_time": f"? (unreadable: {text[:80]!r})"}


class WorkdirLock:
  """Context manager holding `<workdir>/trainer.lock` for a training run."""

  def __init__(self, workdir: str):
    self.path = os.path.join(os.path.abspath(workdir), LOCK_NAME)
    self._fd = None

  def __enter__(self):
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      holder = self._acquire(fd)
    except BaseException:
      os.close(fd)
      raise
    if holder is not None:
      logging.warning("Taking over %s: its holder (%s) is no longer running.", self.path,
                      _describe(holder))
    me = {"host": socket.gethostname(), "pid": os.getpid(),
          "start_time": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
    os.fsync(fd)
    self._fd = fd
    return self

  def _acquire(self, fd: int) -> Optional[dict]:
    """Takes the flock; returns a stale holder's record, raises for a live one."""
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      holder = _read(fd) or {}
      raise WorkdirLocked(
          f"another trainer is using {os.path.dirname(self.path)} ({_describe(holder)}; "
          f"lock file {self.path}). Wait for it to finish, stop it, or use another "
          "--workdir.") from None
    holder = _read(fd)
    if (holder and holder.get("host") == socket.gethostname()
        and isinstance(holder.get("pid"), int) and holder["pid"] != os.getpid()
        and _pid_alive(holder["pid"])):
      # The flock was free but the holder lives: this filesystem's flock does
      # not work across processes (some network mounts). Trust the PID.
      raise WorkdirLocked(f"another trainer is using {os.path.dirname(self.path)} "
                          f"({_describe(holder)}; lock file {self.path}).")
    return holder

  def __exit__(self, *exc):
    if self._fd is not None:
      os.ftruncate(self._fd, 0)  # released: the next trainer warns of nothing
      os.close(self._fd)  # drops the flock
      self._fd = None
