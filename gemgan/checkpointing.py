"""Orbax checkpoints of the whole train state, split so sampling needs only G.

Layout of `<workdir>/checkpoints/<step>/`: `generator` (params, BatchNorm
statistics, EMA params), `critic` (params, statistics), `optimizer` (both Adam
states), `progress` (step, base RNG key; the input position is the step) and
`meta` (JSON: the config and the model signature). Orbax writes each step to
a temporary folder and renames it when complete, so a save cut short by a
kill or a full disk is never listed as a checkpoint and never touches the
previous one.

Integrity: once Orbax has finished a step (renamed it into place), the SHA-256
of every file in it is written to `<step>/gemgan_sha256.json` (a temporary
name, fsync, then an atomic rename). Restores verify them first, so flipped
bytes in a data file or an edited metadata file are named, never loaded. A
step without the file (cut short between Orbax's rename and ours, or written
before checksums existed) counts as not intact. The sidecar is written after
Orbax finalises rather than inside its temporary folder because Orbax owns
that folder's contents until the rename, and a checksum of files Orbax may
still rewrite would be a checksum of nothing.
"""
import hashlib
import json
import os
import shutil
from typing import Any, Optional

from absl import logging
import jax
import ml_collections
import orbax.checkpoint as ocp

from gemgan import steps

ITEMS = ("generator", "critic", "optimizer", "progress")
# Keys that define the networks: a resumed run must not change them.
MODEL_KEYS = ("model", "data.image_size", "precision")


CHECKSUMS = "gemgan_sha256.json"


class CheckpointError(RuntimeError):
  """A checkpoint could not be written or does not fit this run."""


class CorruptCheckpoint(CheckpointError):
  """A checkpoint whose files do not match their checksums, or cannot be read."""

  def __init__(self, step: int, directory: str, problem: str):
    super().__init__(f"the checkpoint of step {step} in {directory} is corrupt: {problem}")
    self.step, self.problem = step, problem


def split_state(state: steps.TrainState) -> dict[str, Any]:
  """TrainState -> the per-item trees stored on disk (G alone is enough to sample)."""
  g, d = state.generator, state.critic
  return {
      "generator": {"params": g.params, "state": g.state, "ema_params": state.ema_params},
      "critic": {"params": d.params, "state": d.state},
      "optimizer": {"g": g.opt_state, "d": d.opt_state},
      "progress": {"step": state.step, "rng": state.rng, "augment": state.augment},
  }


def join_state(items: dict[str, Any]) -> steps.TrainState:
  """Inverse of `split_state`."""
  g, d, o, p = (items[k] for k in ITEMS)
  return steps.TrainState(
      step=p["step"], generator=steps.NetState(g["params"], g["state"], o["g"]),
      critic=steps.NetState(d["params"], d["state"], o["d"]), ema_params=g["ema_params"],
      augment=p["augment"], rng=p["rng"])


def model_signature(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config values that fix parameter shapes and meaning."""
  out = {}
  for key in MODEL_KEYS:
    value = config
    for part in key.split("."):
      value = value[part]
    out[key] = value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value
  # How convolutions are computed changes neither parameters nor results
  # (tests/test_fast_conv.py): a GPU run may resume on CPU and vice versa.
  out["model"].pop("conv_impl", None)
  return out


def _abstract(tree):
  return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _files(step_dir: str) -> list[str]:
  """Every file under `step_dir` (relative paths), the checksums file aside."""
  out = []
  for root, _, names in os.walk(step_dir):
    out += [os.path.relpath(os.path.join(root, n), step_dir) for n in names]
  return sorted(f for f in out if f != CHECKSUMS and not f.startswith(CHECKSUMS + "."))


def write_checksums(step_dir: str) -> None:
  """Seals a finished step: the SHA-256 of each of its files, written atomically."""
  sums = {f: _sha256(os.path.join(step_dir, f)) for f in _files(step_dir)}
  path = os.path.join(step_dir, CHECKSUMS)
  with open(path + ".tmp", "w") as f:
    json.dump({"algorithm": "sha256", "files": sums}, f, indent=1)
    f.flush()
    os.fsync(f.fileno())
  os.replace(path + ".tmp", path)


def checksum_problem(step_dir: str) -> Optional[str]:
  """None if every file of the step matches its checksum, else what is wrong."""
  path = os.path.join(step_dir, CHECKSUMS)
  try:
    with open(path) as f:
      sums = json.load(f)["files"]
  except FileNotFoundError:
    return (f"{path} is missing (the save was cut short after Orbax finished, or the "
            "checkpoint predates checksums)")
  except (OSError, ValueError, KeyError, TypeError) as e:
    return f"{path} cannot be read: {e!r}"
  for name, expected in sorted(sums.items()):
    file = os.path.join(step_dir, name)
    try:
      if _sha256(file) != expected:
        return f"{file} does not match the SHA-256 written with the checkpoint"
    except OSError as e:
      return f"{file} cannot be read: {e!r}"
  return None


def _remove_unfinished(directory: str) -> None:
  """Removes what saves cut short (kill, full disk) left, before a writer starts.

  Orbax would too (cleanup_tmp_directories), but lazily; on a full disk the
  space is needed before the first save. Safe: one trainer per workdir.
  """
  if os.path.isdir(directory):
    for name in os.listdir(directory):
      if ".orbax-checkpoint-tmp" in name:
        logging.info("Removing %s, left by a save that did not finish", name)
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


class Checkpointer:
  """Rolling checkpoints of one run (and, optionally, a kept best one).

  Every step it reads is verified against its checksums first (once per
  process); `newest_intact_step` is what a resume or a sampler without an
  explicit step should use.
  """

  def __init__(self, directory: str, max_to_keep: int = 3, read_only: bool = False):
    self.directory = os.path.abspath(directory)
    self.read_only = read_only
    if not read_only:
      _remove_unfinished(self.directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
        cleanup_tmp_directories=not read_only,
        # A step folder that cannot be made (read-only dir) then fails inside
        # save(); made asynchronously, Orbax's writer threads would wait
        # minutes for it and hold the exiting process.
        async_options=ocp.AsyncOptions(create_directories_asynchronously=False))
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=ITEMS + ("meta",))
    self._verified = set()

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    self._manager.reload()  # see steps saved or removed by another process
    return list(self._manager.all_steps())

  def step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def save(self, state: steps.TrainState, config: ml_collections.ConfigDict,
           extra: Optional[dict] = None) -> None:
    """Saves `state` at its step; raises CheckpointError if writing fails.

    The temporary folder of a failed save is removed when the next training
    run opens the directory (Orbax's cleanup_tmp_directories): at the failure
    Orbax's writer threads may still be writing into it.
    """
    step = int(jax.device_get(state.step))
    meta = {"config": config.to_dict(), "signature": model_signature(config),
            "step": step, **(extra or {})}
    args = {k: ocp.args.StandardSave(v) for k, v in split_state(state).items()}
    try:
      self._manager.save(step, args=ocp.args.Composite(meta=ocp.args.JsonSave(meta), **args),
                         force=True)
      self._manager.wait_until_finished()
      if jax.process_index() == 0:
        write_checksums(self.step_dir(step))
    except Exception as e:  # disk full, read-only, quota: say where and what
      raise CheckpointError(
          f"saving the checkpoint of step {step} to {self.directory} failed: {e!r}. "
          f"Earlier checkpoints are untouched (latest complete: "
          f"{self._manager.latest_step()}).") from e
    self._verified.add(step)
    logging.info("Saved checkpoint of step %d to %s", step, self.directory)

  def verify(self, step: int) -> None:
    """Raises CorruptCheckpoint naming the first file of `step` that does not match."""
    if step not in self._verified:
      problem = checksum_problem(self.step_dir(step))
      if problem:
        raise CorruptCheckpoint(step, self.directory, problem)
      self._verified.add(step)

  def newest_intact_step(self) -> Optional[int]:
    """The newest step whose files match their checksums (None: no checkpoints).

    Newer corrupt steps are skipped with a warning naming step and file. With
    checkpoints present but none intact, raises CheckpointError listing each.
    """
    bad = []
    for step in sorted(self.all_steps(), reverse=True):
      try:
        self.verify(step)
      except CorruptCheckpoint as e:
        bad.append(e)
        continue
      for e in bad:
        self._skip(e, step, move=False)
      return step
    if bad:
      raise self._none_intact(bad)
    return None

  def restore_newest_intact(self, target: steps.TrainState,
                            config: ml_collections.ConfigDict) -> steps.TrainState:
    """What a resume loads: the newest step that verifies, fits `config` and reads.

    Corrupt or unreadable newer steps are skipped with a warning naming the
    step and file, and (unless read-only) moved to `<directory>_corrupt/` so
    the resumed run can save those steps again. A model change is refused
    (CheckpointError) rather than skipped; with none intact nothing is moved.
    """
    bad = []
    for step in sorted(self.all_steps(), reverse=True):
      try:
        self.check_compatible(config, step)  # verifies the step first
        state = self.restore(target, step)
      except CorruptCheckpoint as e:
        bad.append(e)
        continue
      for e in bad:
        self._skip(e, step, move=not self.read_only)
      return state
    raise self._none_intact(bad)

  def _none_intact(self, bad: list[CorruptCheckpoint]) -> CheckpointError:
    return CheckpointError(
        f"no intact checkpoint in {self.directory}: " + "; ".join(str(e) for e in bad)
        + ". To start afresh, use a new --workdir or move that folder away.")

  def _skip(self, error: CorruptCheckpoint, fallback: int, move: bool) -> None:
    moved = ""
    if move:
      dest = os.path.join(self.directory + "_corrupt", str(error.step))
      os.makedirs(os.path.dirname(dest), exist_ok=True)
      shutil.rmtree(dest, ignore_errors=True)
      os.rename(self.step_dir(error.step), dest)
      self._manager.reload()
      moved = f" (moved it to {dest})"
    logging.warning("Skipping %s; using step %d instead%s.", error, fallback, moved)

  def read_meta(self, step: Optional[int] = None) -> dict:
    step = self._resolve(step)
    return self._restore(step, meta=ocp.args.JsonRestore())["meta"]

  def restore(self, target: steps.TrainState, step: Optional[int] = None,
              config: Optional[ml_collections.ConfigDict] = None) -> steps.TrainState:
    """Restores the whole state onto `target`'s structure, shapes and devices.

    With `config`, refuses a checkpoint whose model signature differs.
    """
    step = self._resolve(step)
    if config is not None:
      self.check_compatible(config, step)
    items = split_state(target)
    restored = self._restore(
        step, **{k: ocp.args.StandardRestore(_abstract(v)) for k, v in items.items()})
    return join_state({k: restored[k] for k in ITEMS})

  def restore_generator(self, target: dict, step: Optional[int] = None) -> dict:
    """Restores only the `generator` item (no optimizer or critic needed)."""
    step = self._resolve(step)
    return self._restore(step, generator=ocp.args.StandardRestore(_abstract(target)))["generator"]

  def _restore(self, step: int, **args) -> dict:
    """Orbax's restore of verified `step`; an unreadable item is a CorruptCheckpoint."""
    try:
      return self._manager.restore(step, args=ocp.args.Composite(**args))
    except Exception as e:  # pylint: disable=broad-except
      raise CorruptCheckpoint(step, self.directory,
                              f"items {sorted(args)} cannot be read: {e!r}") from e

  def check_compatible(self, config: ml_collections.ConfigDict, step: Optional[int] = None):
    saved = self.read_meta(step)["signature"]
    now = json.loads(json.dumps(model_signature(config)))
    # Keys the architecture no longer has (runs from before each one owned its
    # config.model keys saved every architecture's) are read by nothing.
    saved["model"] = {k: v for k, v in saved["model"].items() if k in now["model"]}
    if saved != now:
      diff = {k: (saved.get(k), now.get(k)) for k in set(saved) | set(now)
              if saved.get(k) != now.get(k)}
      raise CheckpointError(
          f"refusing to resume from {self.directory}: the model config differs from the "
          f"checkpoint's (key: (saved, now)) {diff}. Use a new --workdir, or restore the "
          "saved values.")

  def _resolve(self, step: Optional[int]) -> int:
    """`step`, verified, or the newest intact step (with a warning for newer bad ones)."""
    steps_here = self.all_steps()
    if not steps_here:
      raise CheckpointError(f"no complete checkpoint in {self.directory}")
    if step is None:
      return self.newest_intact_step()
    if step not in steps_here:
      raise CheckpointError(f"no checkpoint of step {step} in {self.directory}; "
                            f"available: {sorted(steps_here)}")
    self.verify(step)
    return step

  def wait(self):
    self._manager.wait_until_finished()

  def close(self):
    self._manager.close()
