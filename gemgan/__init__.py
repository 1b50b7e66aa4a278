"""gemgan: GANs for gemstone pictures in JAX/Flax."""
