"""Datasets by name: gemgan's registry, and any TFDS dataset besides.

`config.data.name` picks a registered dataset, else falls through to
`tfds.builder(name)` (see registry.py). Importing this package registers the
built-in ones:

* `gemstones`: gem photos from a folder or a .zip (see gemstones.py).
* `synthetic_gems`: rendered gem pictures, no input (see synthetic_gems.py).

A new dataset is one module that defines a TFDS builder and calls
`registry.register`; import it before training (add it below to make it
built in).
"""
from gemgan.datasets import gemstones
from gemgan.datasets import registry
from gemgan.datasets import synthetic_gems
from gemgan.datasets.registry import cache_name
from gemgan.datasets.registry import check_name
from gemgan.datasets.registry import names
from gemgan.datasets.registry import register
from gemgan.datasets.registry import source
from gemgan.datasets.registry import Source
from gemgan.datasets.registry import UnknownDatasetError

__all__ = ["gemstones", "registry", "synthetic_gems", "cache_name", "check_name", "names",
           "register", "source", "Source", "UnknownDatasetError"]
