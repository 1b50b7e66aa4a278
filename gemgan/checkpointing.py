"""Orbax checkpoints of the whole train state, split so sampling needs only G.

Layout of `<workdir>/checkpoints/<step>/`: `generator` (params, BatchNorm
statistics, EMA params), `critic` (params, statistics), `optimizer` (both Adam
states), `progress` (step, base RNG key; the input position is the step) and
`meta` (JSON: the config and the model signature). Orbax writes each step to
a temporary folder and renames it when complete, so a save cut short by a
kill or a full disk is never listed as a checkpoint and never touches the
previous one.
"""
import json
import os
from typing import Any, Optional

from absl import logging
import jax
import ml_collections
import orbax.checkpoint as ocp

from gemgan import steps

ITEMS = ("generator", "critic", "optimizer", "progress")
# Keys that define the networks: a resumed run must not change them.
MODEL_KEYS = ("model", "data.image_size", "precision")


class CheckpointError(RuntimeError):
  """A checkpoint could not be written or does not fit this run."""


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


class Checkpointer:
  """Rolling checkpoints of one run (and, optionally, a kept best one)."""

  def __init__(self, directory: str, max_to_keep: int = 3, read_only: bool = False):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
        cleanup_tmp_directories=not read_only,
        # A step folder that cannot be made (read-only dir) then fails inside
        # save(); made asynchronously, Orbax's writer threads would wait
        # minutes for it and hold the exiting process.
        async_options=ocp.AsyncOptions(create_directories_asynchronously=False))
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=ITEMS + ("meta",))

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    self._manager.reload()  # see steps saved or removed by another process
    return list(self._manager.all_steps())

  def save(self, state: steps.TrainState, config: ml_collections.ConfigDict,
           extra: Optional[dict] = None) -> None:
    """Saves `state` at its step; raises CheckpointError if writing fails."""
    step = int(jax.device_get(state.step))
    meta = {"config": config.to_dict(), "signature": model_signature(config),
            "step": step, **(extra or {})}
    args = {k: ocp.args.StandardSave(v) for k, v in split_state(state).items()}
    try:
      self._manager.save(step, args=ocp.args.Composite(meta=ocp.args.JsonSave(meta), **args),
                         force=True)
      self._manager.wait_until_finished()
    except Exception as e:  # disk full, read-only, quota: say where and what
      raise CheckpointError(
          f"saving the checkpoint of step {step} to {self.directory} failed: {e!r}. "
          f"Earlier checkpoints are untouched (latest complete: "
          f"{self._manager.latest_step()}).") from e
    logging.info("Saved checkpoint of step %d to %s", step, self.directory)

  def read_meta(self, step: Optional[int] = None) -> dict:
    step = self._resolve(step)
    return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def restore(self, target: steps.TrainState, step: Optional[int] = None,
              config: Optional[ml_collections.ConfigDict] = None) -> steps.TrainState:
    """Restores the whole state onto `target`'s structure, shapes and devices.

    With `config`, refuses a checkpoint whose model signature differs.
    """
    step = self._resolve(step)
    if config is not None:
      self.check_compatible(config, step)
    items = split_state(target)
    args = {k: ocp.args.StandardRestore(_abstract(v)) for k, v in items.items()}
    restored = self._manager.restore(step, args=ocp.args.Composite(**args))
    return join_state({k: restored[k] for k in ITEMS})

  def restore_generator(self, target: dict, step: Optional[int] = None) -> dict:
    """Restores only the `generator` item (no optimizer or critic needed)."""
    step = self._resolve(step)
    restored = self._manager.restore(
        step, args=ocp.args.Composite(generator=ocp.args.StandardRestore(_abstract(target))))
    return restored["generator"]

  def check_compatible(self, config: ml_collections.ConfigDict, step: Optional[int] = None):
    saved = self.read_meta(step)["signature"]
    now = json.loads(json.dumps(model_signature(config)))
    if saved != now:
      diff = {k: (saved.get(k), now.get(k)) for k in set(saved) | set(now)
              if saved.get(k) != now.get(k)}
      raise CheckpointError(
          f"refusing to resume from {self.directory}: the model config differs from the "
          f"checkpoint's (key: (saved, now)) {diff}. Use a new --workdir, or restore the "
          "saved values.")

  def _resolve(self, step: Optional[int]) -> int:
    steps_here = self.all_steps()
    if not steps_here:
      raise CheckpointError(f"no complete checkpoint in {self.directory}")
    if step is None:
      return max(steps_here)
    if step not in steps_here:
      raise CheckpointError(f"no checkpoint of step {step} in {self.directory}; "
                            f"available: {sorted(steps_here)}")
    return step

  def wait(self):
    self._manager.wait_until_finished()

  def close(self):
    self._manager.close()
