"""Yardsticks outside the package: other implementations gemgan is measured against.

`torch_reference` is the PyTorch reference of gemgan's networks and training
iteration that `python -m gemgan.benchmark --vs_torch` times beside gemgan's.
It lives here, not in gemgan/, so the library has one implementation (JAX).
"""
