"""Shared pytest setup: CPU only, quiet TensorFlow, real-data location."""
import os
import pathlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
REAL_GEMS_DIR = REPO_ROOT.parent / "shared" / "data" / "gemstones"


@pytest.fixture
def real_gems_dir():
  """The real gem photos, or a skip saying where they were looked for."""
  if not REAL_GEMS_DIR.is_dir():
    pytest.skip(f"real gem photos not found at {REAL_GEMS_DIR}")
  return REAL_GEMS_DIR
