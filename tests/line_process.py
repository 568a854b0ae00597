"""A Python snippet run as a real subprocess whose stdout lines a test reads as they arrive
(leader-election tests: who leads, who waits, what happens when one is killed)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading

from tests.conftest import ROOT


class LineProcess:
    def __init__(self, code: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "toolkit")},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def next_line(self, timeout: float) -> str | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def kill(self) -> None:
        """SIGKILL: no cleanup runs in the child, as when a node or process dies."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
