"""gemgan: GANs for gemstone pictures in JAX/Flax."""
from gemgan import xla_cpu as _xla_cpu

_xla_cpu.set_default_flags()
