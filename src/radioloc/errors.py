"""The one exception type users see: a one-line message naming the file or field and the problem."""


class RadiolocError(Exception):
    """Bad input or an impossible request. The CLI prints ``error: <message>`` and exits with status 2."""

    def __init__(self, message: str):
        # Keep messages on one line so the CLI output stays a single readable line.
        super().__init__(" ".join(str(message).split()))


def first_validation_error(exc: Exception) -> tuple[str, str, str]:
    """(dotted field path, message, error type) of a pydantic ``ValidationError``'s first error: what a one-line
    message about a state file or a setting names ("" for the whole value)."""
    error = exc.errors()[0]
    return ".".join(str(part) for part in error["loc"]), error["msg"].removeprefix("Value error, "), error["type"]
