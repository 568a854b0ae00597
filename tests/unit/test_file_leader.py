"""Local leader election through an flock'd file: real processes, killed by pid."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.line_process import LineProcess
from xpool.errors import InputError
from xpool.reconcile.leader import FileLeadership, default_identity, wait_for_leadership

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
from pathlib import Path
from xpool.reconcile.leader import FileLeadership
lead = FileLeadership(Path(sys.argv[1]), identity=sys.argv[2])
print("started", flush=True)
while not lead.try_acquire():
    time.sleep(0.05)
print("acquired", flush=True)
time.sleep(600)
"""


class Holder(LineProcess):
    """A subprocess running HOLDER on `lock`."""

    def __init__(self, lock: Path, identity: str) -> None:
        super().__init__(HOLDER, str(lock), identity)


def test_killing_the_holder_frees_the_lock_for_the_other_process(tmp_path):
    lock = tmp_path / "reconcile.lock"
    first = Holder(lock, "first@host")
    second = None
    try:
        assert first.next_line(timeout=30) == "started"
        assert first.next_line(timeout=30) == "acquired"
        second = Holder(lock, "second@host")
        assert second.next_line(timeout=30) == "started"
        probe = FileLeadership(lock, identity="probe")
        assert probe.holder() == "first@host"
        assert probe.try_acquire() is False  # held by another process
        assert second.next_line(timeout=1.0) is None  # still waiting

        first.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
        assert second.next_line(timeout=30) == "acquired"
        assert probe.holder() == "second@host"
        assert probe.try_acquire() is False
    finally:
        first.kill()
        if second is not None:
            second.kill()
    assert probe.holder() is None  # the last holder died too
    assert probe.try_acquire() is True
    assert probe.holder() == "probe"


def test_one_of_two_holders_in_process_and_release(tmp_path):
    lock = tmp_path / "nested" / "dir" / "reconcile.lock"
    a = FileLeadership(lock, identity="a")
    b = FileLeadership(lock, identity="b")
    assert a.holder() is None  # no file yet
    assert a.try_acquire() is True
    assert a.try_acquire() is True  # holding it: still True
    assert b.try_acquire() is False
    assert b.holder() == "a"
    assert lock.read_text() == "a\n"
    a.release()
    assert b.holder() is None  # free, although the file still names the last holder
    assert lock.read_text() == "a\n"
    assert b.try_acquire() is True
    assert a.try_acquire() is False
    assert a.holder() == "b"
    a.release()  # not the holder: nothing changes
    assert a.holder() == "b"


def test_replaced_lock_file_is_noticed(tmp_path):
    lock = tmp_path / "reconcile.lock"
    a = FileLeadership(lock, identity="a")
    assert a.try_acquire() is True
    lock.unlink()  # e.g. a temp cleaner: a's lock now guards an unreachable inode
    b = FileLeadership(lock, identity="b")
    assert b.try_acquire() is True
    assert a.try_acquire() is False  # a reopens the path and finds b holding it
    assert a.holder() == "b"


def test_wait_for_leadership_on_a_file(tmp_path):
    lock = tmp_path / "reconcile.lock"
    a = FileLeadership(lock, identity="a")
    b = FileLeadership(lock, identity="b")
    assert a.try_acquire() is True
    lines: list[str] = []
    stop = threading.Event()
    result: list[bool] = []
    waiter = threading.Thread(
        target=lambda: result.append(
            wait_for_leadership(b, retry_every=0.02, stop=stop, log=lines.append)
        )
    )
    waiter.start()
    time.sleep(0.3)  # many attempts, one log line
    a.release()
    waiter.join(timeout=10)
    assert result == [True]
    assert lines == ["b: standing by, the leadership is held by a", "b: acquired the leadership"]

    stop.set()
    assert wait_for_leadership(a, retry_every=0.02, stop=stop, log=lines.append) is False
    with pytest.raises(InputError, match="retry_every"):
        wait_for_leadership(a, retry_every=0, stop=threading.Event(), log=lines.append)


def test_unusable_path_and_identity(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match=r"lock file .*file/reconcile.lock"):
        FileLeadership(blocker / "reconcile.lock", identity="a").try_acquire()
    with pytest.raises(InputError, match="identity"):
        FileLeadership(tmp_path / "x.lock", identity="")


def test_default_identity_names_host_and_process():
    assert default_identity() == f"{socket.gethostname()}-{os.getpid()}"
