"""XLA:CPU defaults that gemgan sets before JAX starts its CPU backend.

jaxlib 0.10 hands convolutions and dots above a small size to YNNPACK by
default (as `--xla_cpu_experimental_ynn_fusion_type=individual_dot,individual_convolution`
does). On a 2-core AMD EPYC (AVX2) its
kernels ran the FID Inception's convolutions 1.5-5x slower than XLA's own
(Eigen) ones and the `laptop` step 1.6x slower, so gemgan turns YNNPACK off
(the flag set to nothing; measured in experiments/cpu_speed/README.md). A
user's own setting of the flag wins.
XLA reads XLA_FLAGS when JAX first starts a backend, so importing gemgan
before any JAX computation is enough; `gemgan/__init__.py` calls this.
"""
import os
import sys
from typing import MutableMapping

from absl import logging

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
YNN_DEFAULT = ""  # no YNNPACK fusions: XLA's own kernels


def set_default_flags(environ: MutableMapping[str, str] = os.environ) -> bool:
  """Appends gemgan's YNNPACK default to XLA_FLAGS unless the flag is set; True if it did."""
  flags = environ.get("XLA_FLAGS", "")
  if YNN_FLAG in flags:
    return False
  environ["XLA_FLAGS"] = " ".join(filter(None, [flags, f"{YNN_FLAG}={YNN_DEFAULT}"]))
  if environ is os.environ and _backend_started():
    logging.warning("JAX started its backend before gemgan was imported, so %s=%s does not "
                    "apply: CPU convolutions may run ~2x slower. Import gemgan first.",
                    YNN_FLAG, YNN_DEFAULT)
  return True


def _backend_started() -> bool:
  if "jax" not in sys.modules:
    return False
  try:
    from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
    return xla_bridge.backends_are_initialized()
  except (ImportError, AttributeError):  # a JAX without this private helper: say nothing
    return False
