"""Shared pytest setup: CPU only, quiet TensorFlow, one XLA cache, real-data location."""
import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# One persistent compilation cache for the session, this process and every
# subprocess run, pytest-xdist's workers included (they inherit the
# environment, and only this process removes the cache): tests build the same tiny
# networks and steps again and again, and most of a tiny step's time is XLA
# compiling it. Set JAX_COMPILATION_CACHE_DIR yourself to keep one across runs.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="gemgan-xla-cache-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# The tests' networks are tiny, so LLVM optimising each compiled step costs
# more than running it. Level 0 keeps the maths (no fast-math) but may sum in
# another order, so compare runs made under the same flags (test_sharding's
# subprocess sets its own). XLA:CPU's older fusion emitters compile these
# steps faster again (the suite: experiments/README.md, "The test suite's
# time"). GEMGAN_TEST_XLA_OPT=1 keeps XLA's defaults.
if not os.environ.get("GEMGAN_TEST_XLA_OPT"):
  os.environ["XLA_FLAGS"] = " ".join(filter(None, [
      os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0",
      "--xla_cpu_use_fusion_emitters=false"]))

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
REAL_GEMS_DIR = REPO_ROOT.parent / "shared" / "data" / "gemstones"


@pytest.fixture
def real_gems_dir():
  """The real gem photos, or a skip saying where they were looked for."""
  if not REAL_GEMS_DIR.is_dir():
    pytest.skip(f"real gem photos not found at {REAL_GEMS_DIR}")
  return REAL_GEMS_DIR


def pytest_unconfigure(config):
  del config
  if _OWN_CACHE:
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
