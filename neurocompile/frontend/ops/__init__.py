"""ONNX op handlers, one module per op family; importing this package registers them all."""

from . import activations, arithmetic, constants, host, layout, linear, masks  # noqa: F401
