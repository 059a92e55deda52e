"""One rule for a full disk: every command stops with one `error:` line naming the file and how to go on.

Without it, a write that hits a full disk (or a quota) surfaces as a chain of tracebacks, and often as a second error
raised while cleaning up ("I/O operation on closed file"), which hides the cause. The commands keep what they had
finished (extraction: its records; training: its last complete checkpoint), so the line says how to resume.
"""

import errno
import functools
from collections.abc import Callable
from typing import TypeVar


NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
F = TypeVar("F", bound=Callable)


def find_no_space(err: BaseException | None) -> OSError | None:
    """The "no space left" `OSError` behind `err`: itself, or one it was raised from or while handling."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in NO_SPACE:
            return err
        err = err.__cause__ or err.__context__
    return None


def exits_cleanly_on_full_disk(resume_hint: str) -> Callable[[F], F]:
    """Decorate a command's `main`: a full disk becomes `error: no space left on the device (writing FILE); HINT`."""

    def decorate(main: F) -> F:
        @functools.wraps(main)
        def wrapper(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except Exception as err:
                cause = find_no_space(err)
                if cause is None:
                    raise
                where = f" (writing {cause.filename})" if cause.filename else ""
                raise SystemExit(
                    f"error: no space left on the device{where}; free some space, then {resume_hint}"
                ) from None

        return wrapper

    return decorate
