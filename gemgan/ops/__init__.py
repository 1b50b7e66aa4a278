"""Custom-VJP layers that make XLA:CPU fast (see conv.py)."""
