"""Run many `xpool` commands, each in a process of its own, without paying the import each time.

`python -m xpool.cli` spends about a second importing (Kubernetes client, pydantic models)
before it reads a platform file; a corpus test that runs four commands on dozens of files
would spend minutes on that alone. This server imports `xpool.cli.main` once, then forks one
child per command: each child has its own state, streams and exit code, as a fresh
`python -m xpool.cli` would (stdin /dev/null; atexit handlers run at exit).

Protocol: one JSON request per line on stdin, `{"argv": [...], "stdout": PATH, "stderr": PATH}`;
one JSON reply per line on stdout, `{"code": N}` (negative: killed by signal -N). Run it from
the repository root as `python -m tests.cli.cli_forkserver`.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

CHILD_SECONDS = 120  # a runaway command (an alias bomb expanding) ends by SIGALRM


def _redirect(fd: int, path: str, errors: str) -> io.TextIOWrapper:
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(target, fd)
    os.close(target)
    return io.TextIOWrapper(
        open(fd, "wb", closefd=False), encoding="utf-8", errors=errors, line_buffering=True
    )


def _child(request: dict[str, Any]) -> int:
    """Run one command as the interpreter would run `python -m xpool.cli ARGV`."""
    from xpool.cli.main import main

    signal.alarm(CHILD_SECONDS)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = _redirect(1, request["stdout"], "strict")
    sys.stderr = _redirect(2, request["stderr"], "backslashreplace")
    sys.argv = ["xpool", *request["argv"]]
    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # sys.exit("message"): printed, exit 1, as the interpreter does
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def serve() -> None:
    import importlib

    from xpool.cli.main import COMMANDS

    for target in COMMANDS.values():  # the imports every child shares
        importlib.import_module(target.split(":")[0])

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(request)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
        sys.stdout.flush()


class ForkServer:
    """The client side: start the server, run commands, stop it."""

    def __init__(self, root: Path, env: dict[str, str], scratch: Path) -> None:
        self.scratch = scratch
        self.count = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.cli.cli_forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env=env,
        )

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.count += 1
        out = self.scratch / f"{self.count}.stdout"
        err = self.scratch / f"{self.count}.stderr"
        request = {"argv": list(argv), "stdout": str(out), "stderr": str(err)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        assert reply, f"the fork server ended (exit {self.process.poll()})"
        return subprocess.CompletedProcess(
            ["xpool", *argv],
            json.loads(reply)["code"],
            out.read_text(encoding="utf-8"),
            err.read_text(encoding="utf-8"),
        )

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


if __name__ == "__main__":
    serve()
