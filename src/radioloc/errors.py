"""The one exception type users see: a one-line message naming the file or field and the problem."""


class RadiolocError(Exception):
    """Bad input or an impossible request. The CLI prints ``error: <message>`` and exits with status 2."""

    def __init__(self, message: str):
        # Keep messages on one line so the CLI output stays a single readable line.
        super().__init__(" ".join(str(message).split()))
