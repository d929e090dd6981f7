"""ONNX frontend: converted networks in, IR out."""

from . import ops  # noqa: F401  (registers the op handlers)
from .convert import onnx_to_ir

__all__ = ["onnx_to_ir"]
