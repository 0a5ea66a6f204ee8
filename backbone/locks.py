"""One process at a time: an exclusive lock on a file that a dead process cannot keep.

``flock`` on a lock file, into which the holder writes ``<pid> <host>``. Plain ``flock`` has two
ways of hanging a restart for ever, and this lock closes both:

- a child forked while the lock is held (a DataLoader worker) shares it, and when the parent is
  killed the child lives on holding it. Every lock held here is closed in a forked child right
  after the fork (``os.register_at_fork``), so only the process that took it holds it;
- a lock still held after its holder died (by something it started outside Python, or by the
  orphaned workers of an older version): when the holder named in the file no longer runs on this
  machine, the waiter says so, replaces the lock file with a fresh one and takes that.

While another live process holds the lock, the waiter says who, once, and waits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from backbone.atomic import pid_alive

_HELD: set[int] = set()  # the file descriptors of the locks this process holds


def _close_held_locks() -> None:
    """In a forked child: close (never unlock: that would free the parent's lock) every held lock."""
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_held_locks)


@contextmanager
def exclusive_lock(
    path: str | Path, what: str = "", say: Callable[[str], None] | None = None, poll: float = 0.5
) -> Iterator[None]:
    """Hold the lock file ``path`` (created if missing) for the ``with`` block.

    Args:
        path: the lock file.
        what: what the holder does, for the messages ("aligning into <folder>").
        say: called with a message when the lock is busy (once) or taken over from a dead holder.
        poll: seconds between two tries while another process holds it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doing = f" ({what})" if what else ""
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder, host = _holder(fd)
            stale = holder is not None and host == socket.gethostname() and not pid_alive(holder)
            if stale and _same_file(fd, path):
                path.unlink(missing_ok=True)  # a fresh file: the dead holder's children keep the old one
                if say:
                    say(f"{path}: its holder, process {holder}{doing}, is gone, and a process it started "
                        "still holds the lock; taking it over")  # fmt: skip
            elif not stale and say and not told:
                say(f"waiting for process {holder or '?'}{doing}, which holds {path} ...")
                told = True
            os.close(fd)
            if not stale:
                time.sleep(poll)
            continue
        if _same_file(fd, path):
            break
        os.close(fd)  # replaced while we took it (a stale lock taken over): lock the new file
    _HELD.add(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        yield
    finally:
        _HELD.discard(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _holder(fd: int) -> tuple[int | None, str]:
    """The PID and host written into the lock file (None while the holder has not written yet)."""
    try:
        pid, host = os.pread(fd, 300, 0).decode("utf-8", "replace").split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None, ""


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named, held = os.stat(path), os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
    except FileNotFoundError:
        return False
