"""Torch model definitions used to produce the example networks in ``graphs/``.

Importing this package requires torch (the ``dev`` extra). The compiler itself never imports
it: it only reads the ONNX files that ``examples/train_digits.py`` exports from these models.
"""
