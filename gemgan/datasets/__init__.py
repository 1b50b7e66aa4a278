"""TFDS builders for gemgan; importing this package registers them.

* `gemstones`: gem photos from a folder or a .zip (see gemstones.py).
* `synthetic_gems`: rendered gem pictures, no input (see synthetic_gems.py).
"""
from gemgan.datasets import gemstones
from gemgan.datasets import synthetic_gems

__all__ = ["gemstones", "synthetic_gems"]
