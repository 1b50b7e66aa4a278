"""gemgan's XLA:CPU defaults: appended once, a user's own setting kept, and in force."""
import os
import subprocess
import sys

import pytest

from gemgan import xla_cpu

DEFAULT = "--xla_cpu_experimental_ynn_fusion_type="


def test_default_is_appended_once():
  env = {"XLA_FLAGS": "--xla_backend_optimization_level=0"}
  assert xla_cpu.set_default_flags(env)
  assert env["XLA_FLAGS"] == f"--xla_backend_optimization_level=0 {DEFAULT}"
  assert not xla_cpu.set_default_flags(env)
  assert env["XLA_FLAGS"].count("ynn_fusion_type") == 1
  empty = {}
  assert xla_cpu.set_default_flags(empty) and empty["XLA_FLAGS"] == DEFAULT


def test_users_own_setting_wins():
  env = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=individual_dot"}
  assert not xla_cpu.set_default_flags(env)
  assert env["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=individual_dot"


# A convolution of a size jaxlib 0.10 gives YNNPACK by default (smaller ones stay on XLA's
# kernels). Dots call YNNPACK from inside their thunks, which the HLO does not show.
_COMPILED_CONV = """
import gemgan, jax, jax.numpy as jnp
x = jax.ShapeDtypeStruct((1, 32, 32, 32), jnp.float32)
w = jax.ShapeDtypeStruct((3, 3, 32, 64), jnp.float32)
conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
print("__ynn_fusion" in jax.jit(conv).lower(x, w).compile().as_text())
"""


@pytest.mark.parametrize("user_flags, on_ynnpack", [
    (None, "False"),
    ("--xla_cpu_experimental_ynn_fusion_type=individual_dot,individual_convolution", "True")])
def test_importing_gemgan_keeps_convolutions_off_ynnpack(user_flags, on_ynnpack):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  if user_flags:
    env["XLA_FLAGS"] = user_flags
  out = subprocess.run([sys.executable, "-c", _COMPILED_CONV], env=env, capture_output=True,
                       text=True, check=True, timeout=120)
  assert out.stdout.strip() == on_ynnpack, out.stderr[-2000:]


def test_warns_when_jax_started_first(monkeypatch, caplog):
  import jax  # pylint: disable=g-import-not-at-top
  jax.devices()  # this process's backend is up, as after any JAX computation
  monkeypatch.setenv("XLA_FLAGS", "")
  assert xla_cpu.set_default_flags()
  assert "JAX started its backend before gemgan was imported" in caplog.text
