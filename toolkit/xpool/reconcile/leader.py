"""One active reconciler: leader election through a Kubernetes Lease or a local file lock.

`xpool reconcile --loop` may run as several replicas (or be started twice by hand); only the
holder of the leadership acts, the others wait and take over when it stops. Callers call
`try_acquire()` before every pass (or `wait_for_leadership`, which returns at once while we hold
it) and act only when it answers True; a pass should be shorter than the lease, because a
standby may take over a lease that has not been renewed for that long.

The Lease follows client-go's `tools/leaderelection` with a `resourcelock.LeaseLock`: every
write carries the resourceVersion it was computed from, so of several candidates at most one
succeeds, and a standby decides that a holder has gone only from how long the holder's record
has stayed unchanged on its *own* clock, never by comparing the remote renewTime with it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from xpool.adapters.kube_client import KubeClient
from xpool.adapters.leases import (
    Lease,
    LeaseSpec,
    create_lease,
    micro_time,
    read_lease,
    update_lease,
)
from xpool.errors import InputError, RemoteError


class Leadership(Protocol):
    """Who may act. Implementations keep no background thread: nothing is renewed unless the
    caller calls `try_acquire()`."""

    identity: str

    def try_acquire(self) -> bool:
        """One non-blocking attempt: True when we hold the leadership now (acquired or renewed)."""
        ...

    def release(self) -> None:
        """Give the leadership up at once (if we hold it) so a standby need not wait for expiry."""
        ...

    def holder(self) -> str | None:
        """Who holds the leadership now (for status and logs); None when free or expired."""
        ...


def default_identity() -> str:
    """`<hostname>-<pid>`: on Kubernetes the hostname is the pod name, so logs name the pod."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _micro_time() -> str:
    """Now as a Kubernetes MicroTime (wall clock, for people and other tools; expiry never
    reads it)."""
    return micro_time(time.time())


def _require_identity(identity: str) -> None:
    if not identity or identity != identity.strip():
        raise InputError(
            f"leader identity {identity!r} must be a non-empty string without surrounding "
            "spaces (an empty holder means a free lease); pass e.g. default_identity()"
        )


class LeaseLeadership:
    """Leadership through the Lease `namespace/name` (coordination.k8s.io/v1), as client-go does.

    - absent: create it holding it (a 409 AlreadyExists means another candidate won: False);
    - held by us: renew (new renewTime) with a PUT carrying the resourceVersion we read;
    - free (empty holderIdentity, after `release()`) or expired: take it over (acquireTime now,
      leaseTransitions + 1) with the same kind of PUT;
    - held by another: expired only once its record (holderIdentity, renewTime, resourceVersion)
      has stayed unchanged for its leaseDurationSeconds as measured by `clock` since we first
      saw that record (client-go's observedTime), so clock skew between hosts does not matter.
    A 409 Conflict or 404 on a write means someone else changed the Lease first: False.

    A holder that cannot renew gets False or RemoteError from every attempt, never True, so it
    stops acting; a standby takes over once the lease has gone unrenewed for its duration.

    Errors: API failures still failing after KubeClient's retries, and refusals such as 403 or
    a missing namespace, raise RemoteError: "not known to hold it", so do not act; the caller
    decides whether to retry (`wait_for_leadership` logs it and retries) or to stop.
    Methods are serialised by a lock, so `holder()` may be called from a status thread.
    """

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        *,
        name: str = "xpool-reconciler",
        identity: str,
        lease_seconds: int = 15,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _require_identity(identity)
        if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, int):
            raise InputError(f"lease_seconds {lease_seconds!r}: must be a whole number of seconds")
        if lease_seconds < 1:
            raise InputError(f"lease_seconds {lease_seconds}: must be at least 1")
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._observed: tuple[str, str, str] | None = None
        self._observed_at = 0.0

    def try_acquire(self) -> bool:
        with self._lock:
            lease = read_lease(self.kube, self.namespace, self.name)
            now = self._clock()
            if lease is None:
                return self._create(now)
            spec = lease.spec
            self._observe(lease, now)
            if spec.holder and spec.holder != self.identity and not self._expired(lease, now):
                return False
            stamp = _micro_time()
            if spec.holder != self.identity:
                spec = replace(spec, acquire_time=stamp, transitions=(spec.transitions or 0) + 1)
            spec = replace(
                spec,
                holder=self.identity,
                duration=self.lease_seconds,
                renew_time=stamp,
                acquire_time=spec.acquire_time or stamp,
                transitions=spec.transitions or 0,
            )
            stored = update_lease(self.kube, lease, spec)
            if stored is None:
                return False
            self._observe(stored, now)
            return True

    def release(self) -> None:
        """If we hold it: clear holderIdentity (keeping the object, its transitions, and a
        leaseDurationSeconds of 1 as client-go does). A lease someone else changed meanwhile
        is left alone. Raises RemoteError as `try_acquire` does."""
        with self._lock:
            lease = read_lease(self.kube, self.namespace, self.name)
            if lease is None or lease.spec.holder != self.identity:
                return
            stamp = _micro_time()
            spec = replace(lease.spec, holder="", duration=1, acquire_time=stamp, renew_time=stamp)
            stored = update_lease(self.kube, lease, spec)
            if stored is not None:
                self._observe(stored, self._clock())

    def holder(self) -> str | None:
        """The holderIdentity, unless the lease is absent, free, or expired by our observation
        (so a fresh object reports a silent holder only after watching it for a lease)."""
        with self._lock:
            lease = read_lease(self.kube, self.namespace, self.name)
            if lease is None:
                return None
            now = self._clock()
            self._observe(lease, now)
            if not lease.spec.holder or self._expired(lease, now):
                return None
            return lease.spec.holder

    def _create(self, now: float) -> bool:
        stamp = _micro_time()
        spec = LeaseSpec(
            holder=self.identity,
            duration=self.lease_seconds,
            acquire_time=stamp,
            renew_time=stamp,
            transitions=0,
        )
        stored = create_lease(self.kube, self.namespace, self.name, spec)
        if stored is None:  # AlreadyExists: another candidate created it first
            return False
        self._observe(stored, now)
        return True

    # -- record observation ---------------------------------------------------------------------

    def _observe(self, lease: Lease, now: float) -> None:
        """Restart the expiry timer whenever the holder's record changes."""
        record = (lease.spec.holder, lease.spec.renew_time or "", lease.resource_version)
        if record != self._observed:
            self._observed, self._observed_at = record, now

    def _expired(self, lease: Lease, now: float) -> bool:
        duration = lease.spec.duration
        seconds = duration if duration is not None and duration > 0 else self.lease_seconds
        return now >= self._observed_at + seconds


class FileLeadership:
    """Leadership on one machine: an exclusive `flock` on `path`.

    The lock is taken on a descriptor kept open for the life of the process, so the kernel
    releases it when the holder exits or crashes (SIGKILL included); no expiry is needed. The
    holder writes its identity into the file for `holder()`. The descriptor is not inherited by
    exec'd children; a fork()ed child without exec shares the lock, so fork before acquiring.
    If the lock file is deleted or replaced, a lock on the old inode excludes nobody: the next
    `try_acquire()` notices, reopens the path, and contends again.
    Errors: a path that cannot be opened or locked raises InputError naming it.
    """

    def __init__(self, path: Path, *, identity: str) -> None:
        _require_identity(identity)
        self.path = Path(path)
        self.identity = identity
        self._fd: int | None = None
        self._held = False

    def try_acquire(self) -> bool:
        if self._fd is not None and not self._is_current(self._fd):
            os.close(self._fd)
            self._fd, self._held = None, False
        fd = self._open()
        if self._held:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise self._unusable(exc) from None
        self._held = True
        # Overwrite, then cut: a reader never sees an empty file, only a first line that is
        # the previous holder's identity (for an instant) or ours.
        line = f"{self.identity}\n".encode()
        os.pwrite(fd, line, 0)
        os.ftruncate(fd, len(line))
        return True

    def release(self) -> None:
        """Unlock; the descriptor stays open for the next attempt. The file keeps our identity,
        which `holder()` ignores once the lock is free."""
        if self._fd is None or not self._held:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._held = False

    def holder(self) -> str | None:
        """Probe with a shared lock on a fresh descriptor: granted means nobody holds it."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unusable(exc) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                return text.partition("\n")[0].strip() or "unknown (identity not written yet)"
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def _open(self) -> int:
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise self._unusable(exc) from None
        return self._fd

    def _is_current(self, fd: int) -> bool:
        """Whether `path` still names the file our descriptor has open."""
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)

    def _unusable(self, exc: OSError) -> InputError:
        return InputError(
            f"lock file {self.path}: {exc.strerror or exc}; choose a writable local path"
        )


def wait_for_leadership(
    leader: Leadership,
    *,
    retry_every: float,
    stop: threading.Event,
    log: Callable[[str], None],
) -> bool:
    """Block until `leader.try_acquire()` is True (True) or `stop` is set (False).

    Returns at once while we already hold it, so a loop may call it before every pass. While
    waiting it logs who holds the leadership once (again only when that changes; a moment
    with no holder is not logged), logs a RemoteError once per distinct message and keeps
    retrying every `retry_every` seconds, and logs when it finally acquires after having
    logged that it waits.
    """
    if retry_every <= 0:
        raise InputError(f"retry_every {retry_every}: must be more than 0 seconds")
    logged: str | None = None
    while not stop.is_set():
        try:
            if leader.try_acquire():
                if logged is not None:
                    log(f"{leader.identity}: acquired the leadership")
                return True
            holder = leader.holder()
            # None: freed or taken over since the attempt; the next attempt tells.
            line = holder and f"{leader.identity}: standing by, the leadership is held by {holder}"
        except RemoteError as exc:
            line = f"{leader.identity}: cannot tell who leads, retrying: {exc}"
        if line and line != logged:
            log(line)
            logged = line
        stop.wait(retry_every)
    return False
