"""The tiny configs tests train: 16 px, width 4, latent 8, batch 8 (seconds on a CPU)."""


def tiny_config(module, preset: str = "", size: int = 16, width: int = 4, **overrides):
  """`module.get_config(preset)` shrunk to test size; top-level `overrides` applied last."""
  c = module.get_config(preset)
  c.data.image_size, c.model.width, c.model.latent_dim, c.batch_size = size, width, 8, 8
  for key, value in overrides.items():
    c[key] = value
  return c
