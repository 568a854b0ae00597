"""The worker container's preStop hook, run as the kubelet runs it: a shell in the container's
own PID namespace, whose PID 1 is the worker. It must wait for the drain, then SIGINT every
process of the container (Xinference's worker unregisters from the supervisor only on SIGINT),
PID 1 included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from xpool.render.build_workers import _WORKER_PRE_STOP, DRAINED_FILE

# PID 1 of the namespace, standing in for `xinference-worker`: a Python process with a child
# (its actor pool), each recording the SIGINT it gets; it runs the hook as the kubelet would.
WORKER = """
import os, signal, subprocess, sys, time
out, done, hook = sys.argv[1:4]
child = subprocess.Popen([sys.executable, "-c", '''
import os, signal, sys, time
signal.signal(signal.SIGINT, lambda *_: (open(os.path.join(sys.argv[1], "child"), "w").close(), os._exit(0)))
open(os.path.join(sys.argv[1], "child-ready"), "w").close()
time.sleep(60)
''', out])
signal.signal(signal.SIGINT, lambda *_: open(os.path.join(out, "pid1"), "w").close())
while not os.path.exists(os.path.join(out, "child-ready")):
    time.sleep(0.05)
running = subprocess.Popen(["sh", "-c", hook])
time.sleep(1.5)
if running.poll() is None:
    open(os.path.join(out, "waited"), "w").close()
open(done, "w").close()
running.wait(timeout=30)
child.wait(timeout=10)
"""


def test_the_hook_waits_for_the_drain_then_interrupts_every_process(tmp_path: Path) -> None:
    done = tmp_path / "drained"
    hook = _WORKER_PRE_STOP.replace(DRAINED_FILE, str(done))
    assert hook != _WORKER_PRE_STOP
    subprocess.run(
        [
            "unshare",
            "--pid",
            "--fork",
            sys.executable,
            "-c",
            WORKER,
            str(tmp_path),
            str(done),
            hook,
        ],
        check=True,
        timeout=60,
    )
    assert (tmp_path / "waited").exists()  # nothing was signalled before the drain ended
    assert (tmp_path / "child").exists()  # `kill -INT -1`: every process but PID 1
    assert (tmp_path / "pid1").exists()  # `kill -INT 1`
