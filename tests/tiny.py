"""The tiny configs tests train: 16 px, width 4, latent 8, batch 8 (seconds on a CPU)."""
import numpy as np


def tiny_config(module, preset: str = "", size: int = 16, width: int = 4, **overrides):
  """`module.get_config(preset)` shrunk to test size; top-level `overrides` applied last."""
  c = module.get_config(preset)
  c.data.image_size, c.model.width, c.model.latent_dim, c.batch_size = size, width, 8, 8
  for key, value in overrides.items():
    c[key] = value
  return c


def converged_spectral_state(params, state):
  """Critic state whose every spectral-norm u is its kernel's top right singular
  vector (from an SVD): a fixed point of the power iteration, so that any
  number of iterations gives the same sigma."""
  def walk(stats, p):
    out = {}
    for key, value in stats.items():
      if key.endswith("/kernel/u"):
        kernel = np.asarray(p[key.split("/")[0]]["kernel"])
        value = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]))[2][:1]
      elif isinstance(value, dict):
        value = walk(value, p.get(key, p) if not key.startswith(("MaybeSpectral", "Spectral"))
                     else p)
      out[key] = value
    return out
  return {**state, "batch_stats": walk(state["batch_stats"], params)}
