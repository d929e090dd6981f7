"""neurocompile: a deployment compiler for converted spiking networks on Loihi-style hardware.

Pipeline: ONNX -> IR (networkx) -> passes (lowering, calibration, quantization) -> placement ->
artifact, run on two backends that agree spike for spike: the bit-accurate simulator and Lava.
"""

__version__ = "0.1.0"
