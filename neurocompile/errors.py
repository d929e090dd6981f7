"""The one error type users see: a single line naming what is wrong and where."""


class NeurocompileError(Exception):
    """Bad input of any kind (model, target, artifact, data, flags).

    The command line prints the message on one line and exits with code 2.
    """

    exit_code = 2

    def __init__(self, message: str):
        # One line only: callers may interpolate names that contain newlines.
        super().__init__(" ".join(str(message).split()))
