"""The cache's lock: held by the process that took it only, taken over when its holder is dead."""

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from backbone.locks import exclusive_lock

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

FORK_THEN_DIE = """
import os, signal, sys, time
from backbone.locks import exclusive_lock
with exclusive_lock(sys.argv[1]):
    child = os.fork()  # as a DataLoader worker is forked
    if child == 0:
        os.write(1, b"child running\\n")  # past the fork's hooks, which close the lock in the child
        time.sleep(60)
        os._exit(0)
    os.write(1, f"{child}\\n".encode())  # one write a line: print may write the newline apart
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9 of the parent only: the child lives on
"""

FLOCK_AND_SLEEP = """
import fcntl, sys, time
lock = open(sys.argv[1], "a")
fcntl.flock(lock, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def is_free(path) -> bool:
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def test_a_forked_child_does_not_keep_the_lock_when_its_parent_is_killed(tmp_path):
    lock = tmp_path / ".lock"
    parent = subprocess.Popen([sys.executable, "-c", FORK_THEN_DIE, str(lock)], stdout=subprocess.PIPE, text=True)
    # both lines, in whichever order they come: on a loaded machine the child may not have run yet
    lines = {parent.stdout.readline().strip() for _ in range(2)}
    assert "child running" in lines, lines
    child = int(next(line for line in lines if line != "child running"))
    try:
        assert parent.wait(timeout=30) == -signal.SIGKILL
        assert os.kill(child, 0) is None  # the orphan still runs ...
        assert is_free(lock)  # ... and holds no lock: a restart does not wait for it
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_forked_child_that_ends_leaves_the_parents_lock_held(tmp_path):
    lock = tmp_path / ".lock"
    with exclusive_lock(lock):
        child = os.fork()
        if child == 0:
            os._exit(0)  # closes its copy of every descriptor
        os.waitpid(child, 0)
        assert not is_free(lock)
        assert lock.read_text().split() == [str(os.getpid()), socket.gethostname()]
    assert is_free(lock)


def test_a_lock_whose_holder_is_dead_is_taken_over_with_a_message(tmp_path):
    lock = tmp_path / ".lock"
    gone = subprocess.Popen(["true"])
    gone.wait()
    holder = subprocess.Popen([sys.executable, "-c", FLOCK_AND_SLEEP, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # an orphan of the dead process, say
        lock.write_text(f"{gone.pid} {socket.gethostname()}\n")
        said = []
        with exclusive_lock(lock, "aligning into the cache", say=said.append):
            assert lock.read_text().split()[0] == str(os.getpid())
        assert len(said) == 1 and f"process {gone.pid} (aligning into the cache), is gone" in said[0]
        assert "taking it over" in said[0] and str(lock) in said[0]
    finally:
        holder.kill()
        holder.wait()


def test_a_live_holder_is_named_once_and_waited_for(tmp_path):
    lock = tmp_path / ".lock"
    code = "import sys, time\nfrom backbone.locks import exclusive_lock\n"
    code += "with exclusive_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(1.5)\n"
    holder = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        said, start = [], time.monotonic()
        with exclusive_lock(lock, "aligning", say=said.append, poll=0.1):
            waited = time.monotonic() - start
        assert said == [f"waiting for process {holder.pid} (aligning), which holds {lock} ..."]
        assert waited > 0.3  # it waited for the holder to finish rather than taking the lock
    finally:
        holder.kill()
        holder.wait()
