"""One exception type for every user-facing error.

A :class:`WaeError` carries a one-line message that names the problem and the
fix; the CLI prints it without a traceback and exits non-zero.  The CLI also
answers an out-of-memory error (:func:`is_out_of_memory`) and an OSError
about a path (:func:`os_error_text`) in one line.
"""
from __future__ import annotations

import errno
import re
import sys
from typing import Callable, TypeVar

T = TypeVar("T")


class WaeError(Exception):
    """A bad input or state the user can fix; ``str(e)`` is one line."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


# The docs pages a message points at: docs/NAME -> its title, the words that find the page where docs/ is
# not at hand (an installed wheel ships no docs/, and the project names no URL).  tests/test_doc_refs.py
# checks each title and section against the page, and that no message names docs/ or benchmarks/ otherwise.
DOC_PAGES = {
    "benchmarks.md": "Benchmarks: specs, the tuning protocol, tables and plots",
    "datasets.md": "Datasets",
    "status.md": "Reproduction status",
    "maintaining.md": "Maintaining wae-bench",
}


def doc_ref(page: str, section: str | None = None) -> str:
    """Where the docs say more, in words that find it from an installed
    wheel too: ``the 'Datasets' page of wae-bench's docs, section 'CelebA'
    (docs/datasets.md#celeba in wae-bench's source)``; ``page`` is one of
    :data:`DOC_PAGES`, ``section`` a heading of it (the anchor is GitHub's:
    lower case, punctuation dropped, spaces to hyphens)."""
    where = f"docs/{page}"
    if section:
        where += "#" + re.sub(r"[^\w\- ]", "", section.lower()).replace(" ", "-")
    return (f"the {DOC_PAGES[page]!r} page of wae-bench's docs" + (f", section {section!r}" if section else "")
            + f" ({where} in wae-bench's source)")


def source_file(path: str) -> str:
    """A file of the wae-bench source that an installed wheel does not ship
    (``benchmarks/``: specs, scripts, committed results):
    ``benchmarks/speed.py of wae-bench's source (not installed with the package)``."""
    return f"{path} of wae-bench's source (not installed with the package)"


def is_out_of_memory(e: BaseException) -> bool:
    """An allocator's out-of-memory error (CUDA's ``OutOfMemoryError``, the
    CPU allocator's RuntimeError, Python's MemoryError)."""
    text = str(e)
    return (type(e).__name__ in ("OutOfMemoryError", "MemoryError") or "can't allocate memory" in text
            or "not enough memory" in text or "out of memory" in text.lower()[:200])


_OS_FIXES = {
    errno.ENAMETOOLONG: "shorten the path (the filesystem takes at most 255 bytes a name)",
    errno.EACCES: "check its permissions, or choose another path",
    errno.EPERM: "check its permissions, or choose another path",
    errno.EROFS: "the filesystem is read-only: choose another path",
    errno.ENOSPC: "free disk space",
    errno.EDQUOT: "free disk space (the quota is used up)",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder, not a file: check the path",
    errno.ELOOP: "the path has a symbolic-link loop: check the path",
}


def os_fix(e: OSError) -> str:
    """What to do about an OSError, by its errno."""
    return _OS_FIXES.get(e.errno, "check the path")


def os_error_text(e: OSError) -> str:
    """One line for an OSError about a path: ``cannot use '…' (File name too long); <fix>``."""
    return f"cannot use {str(e.filename)!r} ({e.strerror or e}); {os_fix(e)}"


def run_script(main: Callable[[], T]) -> T:
    """Run a script's ``main`` (benchmarks/*.py) as the CLI answers bad
    input: a :class:`WaeError` is one line ``error: <problem>; <fix>`` on
    stderr and exit status 2, never a traceback."""
    try:
        return main()
    except WaeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
