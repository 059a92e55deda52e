"""One writer per output: a lock file holding the writer's pid (and its start time), refused to a second writer while
that process lives.

Builds, trainings and extractions each write one output (a dataset folder, a run folder, a JSONL file); two of them
writing the same output interleave or overwrite each other's work. The lock is taken before the first write and
released at the end; a lock left by a process that died (killed, power loss) is taken over, also when the system
has since given its pid to an unrelated process (the start time recorded beside the pid tells them apart).
"""

import os
from pathlib import Path


class OutputLock:
    """`with OutputLock(path, what="train.py"):` holds `path` (a lock file) for this process.

    `what` names the kind of writer in the refusal (`another train.py (pid 123) is writing to ...`).
    """

    def __init__(self, path: Path, what: str, target: Path | None = None):
        self.path = Path(path)
        self.what = what
        self.target = target or self.path.parent
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder, started = _holder(self.path)
                same_process = started is None or started == _start_time(holder)  # not a reused pid
                if holder and holder != os.getpid() and _process_alive(holder) and same_process:
                    raise SystemExit(
                        f"error: another {self.what} (pid {holder}) is writing to {self.target}; wait for it to "
                        f"finish, or remove {self.path} if that process is gone"
                    ) from None
                self.path.unlink(missing_ok=True)  # left by a process that died
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                started = _start_time(os.getpid())
                f.write(f"{os.getpid()}\n" if started is None else f"{os.getpid()} {started}\n")
            self.held = True
            return
        raise SystemExit(f"error: cannot take the lock {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(path: Path) -> tuple[int, int | None]:
    """The pid in a lock file and the start time recorded with it (None: a lock written without one)."""
    try:
        fields = path.read_text(encoding="utf-8").split()
        return (int(fields[0]) if fields else 0), (int(fields[1]) if len(fields) > 1 else None)
    except (OSError, ValueError):
        return 0, None


def _start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot, /proc/<pid>/stat field 22), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
        return int(stat.rsplit(")", 1)[1].split()[19])  # fields after the command name, which may hold spaces
    except (OSError, ValueError, IndexError):
        return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


__all__ = ["OutputLock"]
