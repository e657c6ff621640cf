"""One exception type for every user-facing error.

A :class:`WaeError` carries a one-line message that names the problem and the
fix; the CLI prints it without a traceback and exits non-zero.
"""


class WaeError(Exception):
    """A bad input or state the user can fix; ``str(e)`` is one line."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
