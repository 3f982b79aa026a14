"""Running `scratchlm ...` as a user does, in a process of its own (not a test module).

Importing torch costs each new Python process about two CPU-seconds, which a hundred command lines
would pay a hundred times. `ForkRunner` starts one fresh interpreter that imports torch and
`scratchlm.cli` once, then forks a child per command line: the child changes into the given
directory, points stdin at /dev/null and stdout/stderr at two files, runs `main(argv)` and exits
with its status (an uncaught exception prints its traceback and exits 1, as `python -m scratchlm`
would). `run_process` runs `python -m scratchlm` as a new process, for comparison.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FORK_RUNNER = """
import json, os, signal, sys, traceback
import torch  # noqa: F401  (what every command pays for, paid once)
from scratchlm.cli import main

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.alarm(job["timeout"])
        os.chdir(job["cwd"])
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.stdin = open(os.devnull)
        sys.argv = ["scratchlm", *job["argv"]]
        try:
            code = main(job["argv"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (exc.code is not None)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


def cli_env() -> dict[str, str]:
    """The user's environment without SCRATCHLM_HOME / SCRATCHLM_DEBUG, one thread for torch."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRATCHLM_")}
    return env | {"OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


class ForkRunner:
    """Runs `scratchlm ARGV` in a forked child of one long-lived interpreter (module docstring)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.server = subprocess.Popen(
            [sys.executable, "-c", FORK_RUNNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=cli_env(),
            text=True,
        )

    def run(self, argv: list[str], cwd: Path, timeout: int = 120) -> Result:
        out, err = self.scratch / "stdout.txt", self.scratch / "stderr.txt"
        job = {"argv": argv, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
        self.server.stdin.write(json.dumps(job | {"timeout": timeout}) + "\n")
        self.server.stdin.flush()
        code = int(self.server.stdout.readline())
        return Result(code, out.read_text(), err.read_text())

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait(timeout=30)


def run_process(argv: list[str], cwd: Path) -> Result:
    """`python -m scratchlm ARGV` as a new process."""
    done = subprocess.run(
        [sys.executable, "-m", "scratchlm", *argv],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Result(done.returncode, done.stdout, done.stderr)
