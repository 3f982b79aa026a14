"""Another process holding a run directory's lock, as a running scratchlm command does."""

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The lock protocol of scratchlm.train.checkpoint.lock_run, without importing torch (fast).
HOLD = (
    "import fcntl, os, sys, time\n"
    "os.makedirs(sys.argv[1], exist_ok=True)\n"
    "fd = os.open(os.path.join(sys.argv[1], '.lock'), os.O_RDWR | os.O_CREAT)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "os.write(fd, b'%d\\n' % os.getpid())\n"
    "print('locked', flush=True)\n"
    "time.sleep(600)\n"
)


@contextmanager
def locked_by_another_process(run_dir: Path) -> Iterator[int]:
    """Create `run_dir`, lock it from a child process and yield the child's PID; kill it after."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"locked\n"
        yield child.pid
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
