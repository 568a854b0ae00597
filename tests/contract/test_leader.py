"""Leader election through a coordination.k8s.io/v1 Lease, against the contract API server.

Standbys get an injected clock, so "the lease has expired" is reached by advancing it rather than
by sleeping; one test runs two real processes that contend over HTTP and kills the leader.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.line_process import LineProcess
from xpool.adapters.kube_client import Connection, KubeClient, RetryPolicy
from xpool.errors import InputError, RemoteError
from xpool.reconcile.leader import LeaseLeadership, wait_for_leadership

ROOT = Path(__file__).resolve().parents[2]
NS = "default"
LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/xpool-reconciler"
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
FAST = RetryPolicy(attempts=2, max_seconds=2.0, base_seconds=0.05, timeout_seconds=10.0)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class GatedKube(KubeClient):
    """A real client that waits at `gate` before each PUT, to force two candidates to read
    the same resourceVersion before either writes."""

    gate: threading.Barrier | None = field(default=None)

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if method == "PUT" and self.gate is not None:
            self.gate.wait(timeout=10)
        return super().request(method, path, **kwargs)


@pytest.fixture
def connect(kubeconfig: Path):
    clients: list[KubeClient] = []

    def make(cls: type[KubeClient] = KubeClient) -> KubeClient:
        base = KubeClient.connect(Connection(kubeconfig=str(kubeconfig)), policy=FAST)
        client = cls(base.configuration, base.source, FAST)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def lease(kube_api) -> dict[str, Any]:
    stored = kube_api.get("coordination.k8s.io/v1", "Lease", "xpool-reconciler", NS)
    assert stored is not None
    return stored


def candidate(connect, identity: str, clock: FakeClock | None = None, **kw) -> LeaseLeadership:
    extra = {"clock": clock} if clock is not None else {}
    return LeaseLeadership(connect(), NS, identity=identity, lease_seconds=15, **extra, **kw)


def test_one_acquires_and_the_standby_waits_while_the_holder_renews(kube_api, connect):
    clock_b = FakeClock()
    a, b = candidate(connect, "a"), candidate(connect, "b", clock_b)
    assert a.try_acquire() is True
    assert b.try_acquire() is False
    created = lease(kube_api)["spec"]
    assert created["holderIdentity"] == "a"
    assert created["leaseDurationSeconds"] == 15
    assert created["leaseTransitions"] == 0
    assert MICRO_TIME.match(created["renewTime"]) and MICRO_TIME.match(created["acquireTime"])

    renew_times = {created["renewTime"]}
    for _ in range(3):
        clock_b.advance(60)  # far beyond the lease, but each renewal is a new record to b
        assert a.try_acquire() is True
        assert b.try_acquire() is False
        assert b.holder() == "a"
        spec = lease(kube_api)["spec"]
        renew_times.add(spec["renewTime"])
        assert spec["acquireTime"] == created["acquireTime"]
        assert spec["leaseTransitions"] == 0
    assert len(renew_times) == 4
    puts = [r for r in kube_api.requests if r.method == "PUT"]
    assert len(puts) == 3
    assert all(r.json()["metadata"]["resourceVersion"] for r in puts)  # optimistic concurrency


def test_standby_takes_over_after_a_lease_of_its_own_observation(kube_api, connect):
    clock_b = FakeClock()
    a, b = candidate(connect, "a"), candidate(connect, "b", clock_b)
    assert a.try_acquire() is True
    assert b.try_acquire() is False  # b starts its timer on a's record
    clock_b.advance(14.9)
    assert b.try_acquire() is False
    assert b.holder() == "a"
    clock_b.advance(0.1)
    assert b.holder() is None  # expired as far as b can tell
    assert b.try_acquire() is True
    spec = lease(kube_api)["spec"]
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1
    # the old holder, back from its pause, sees b and stands by instead of renewing
    assert a.try_acquire() is False
    assert a.holder() == "b"
    assert lease(kube_api)["spec"]["holderIdentity"] == "b"


def test_remote_renew_time_is_never_compared_with_our_clock(kube_api, connect):
    """A holder whose clock is years behind (or ahead) is judged only by our observation."""
    for renew in ("2000-01-01T00:00:00.000000Z", "2999-01-01T00:00:00.000000Z"):
        kube_api.seed(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "xpool-reconciler", "namespace": NS},
                "spec": {
                    "holderIdentity": "skewed",
                    "leaseDurationSeconds": 15,
                    "acquireTime": renew,
                    "renewTime": renew,
                    "leaseTransitions": 4,
                },
            }
        )
        clock = FakeClock()
        b = candidate(connect, "b", clock)
        assert b.try_acquire() is False
        assert b.holder() == "skewed"
        clock.advance(15)
        assert b.try_acquire() is True
        assert lease(kube_api)["spec"]["leaseTransitions"] == 5
        connect().request("DELETE", LEASE_PATH, what="test")


def test_release_lets_the_standby_acquire_at_once(kube_api, connect):
    a, b = candidate(connect, "a"), candidate(connect, "b", FakeClock())
    assert a.try_acquire() is True
    assert b.try_acquire() is False
    a.release()
    spec = lease(kube_api)["spec"]
    assert spec["holderIdentity"] == ""  # the object stays, free
    assert spec["leaseTransitions"] == 0
    assert a.holder() is None and b.holder() is None
    assert b.try_acquire() is True  # no clock advance needed
    spec = lease(kube_api)["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)
    assert spec["leaseDurationSeconds"] == 15

    kube_api.clear_log()
    a.release()  # not the holder: nothing is written
    assert kube_api.writes() == []
    assert lease(kube_api)["spec"]["holderIdentity"] == "b"


def test_two_standbys_racing_for_an_expired_lease_one_wins(kube_api, connect):
    a = candidate(connect, "a")
    assert a.try_acquire() is True
    gate = threading.Barrier(2)
    clocks = {"b": FakeClock(), "c": FakeClock()}
    racers = {}
    for name, clock in clocks.items():
        kube = connect(GatedKube)
        racers[name] = LeaseLeadership(kube, NS, identity=name, lease_seconds=15, clock=clock)
        assert racers[name].try_acquire() is False  # observe a's record (no PUT yet)
        kube.gate = gate
        clock.advance(15)

    results: dict[str, bool] = {}
    threads = [
        threading.Thread(target=lambda n=n: results.__setitem__(n, racers[n].try_acquire()))
        for n in racers
    ]
    kube_api.clear_log()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(results.values()) == [False, True]
    winner = next(n for n, won in results.items() if won)
    spec = lease(kube_api)["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == (winner, 1)
    puts = sorted(r.status for r in kube_api.requests if r.method == "PUT")
    assert puts == [200, 409]  # both wrote from the same resourceVersion; one was refused


def test_holder_that_cannot_renew_never_reports_true(kube_api, connect):
    clock_b = FakeClock()
    a, b = candidate(connect, "a"), candidate(connect, "b", clock_b)
    assert a.try_acquire() is True
    assert b.try_acquire() is False
    kube_api.inject("PUT", r"/leases/xpool-reconciler$", 503, times=2)  # a's retries run out
    with pytest.raises(RemoteError, match=r"Lease default/xpool-reconciler.*503"):
        a.try_acquire()
    clock_b.advance(15)
    assert b.try_acquire() is True
    assert a.try_acquire() is False


def test_wait_for_leadership_logs_errors_and_the_holder_once(kube_api, connect):
    a = candidate(connect, "a")
    kube_api.inject("GET", r"/leases/xpool-reconciler$", 503, times=2)  # one failed attempt
    lines: list[str] = []
    assert wait_for_leadership(a, retry_every=0.05, stop=threading.Event(), log=lines.append)
    assert len(lines) == 2
    assert "cannot tell who leads" in lines[0] and "503" in lines[0]
    assert lines[1] == "a: acquired the leadership"

    lines.clear()
    assert wait_for_leadership(a, retry_every=0.05, stop=threading.Event(), log=lines.append)
    assert lines == []  # already the holder: returns at once, quietly

    b = candidate(connect, "b")
    stop = threading.Event()
    waiter = threading.Thread(
        target=lambda: lines.append(
            str(wait_for_leadership(b, retry_every=0.02, stop=stop, log=lines.append))
        )
    )
    kube_api.clear_log()
    waiter.start()
    deadline = time.monotonic() + 10
    while sum(r.method == "GET" for r in kube_api.requests) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    waiter.join(timeout=10)
    assert lines == ["b: standing by, the leadership is held by a", "False"]


def test_bad_arguments_and_missing_namespace(kube_api, connect):
    with pytest.raises(InputError, match="identity"):
        LeaseLeadership(connect(), NS, identity="")
    with pytest.raises(InputError, match="lease_seconds"):
        LeaseLeadership(connect(), NS, identity="a", lease_seconds=0)
    missing = LeaseLeadership(connect(), "nowhere", identity="a")
    with pytest.raises(RemoteError, match=r"Lease nowhere/xpool-reconciler: cannot create.*404"):
        missing.try_acquire()
    assert missing.holder() is None


# -- two real processes --------------------------------------------------------------------------

CONTENDER = """
import sys, time
from xpool.adapters.kube_client import Connection, KubeClient
from xpool.reconcile.leader import LeaseLeadership
kube = KubeClient.connect(Connection(kubeconfig=sys.argv[1]))
lead = LeaseLeadership(kube, "default", identity=sys.argv[2], lease_seconds=2)
print("started", flush=True)
leading = False
while True:
    now = lead.try_acquire()
    if now != leading:
        print("leader" if now else "standby", flush=True)
        leading = now
    time.sleep(0.2)
"""


class Contender(LineProcess):
    """A subprocess running CONTENDER against the contract server."""

    def __init__(self, kubeconfig: Path, identity: str) -> None:
        super().__init__(CONTENDER, str(kubeconfig), identity)
        self.identity = identity


def test_two_processes_one_leads_and_the_other_takes_over_when_it_dies(kube_api, kubeconfig):
    config = kube_api.write_kubeconfig(kubeconfig.parent / "kc-default", namespace=NS)
    procs = [Contender(config, "first"), Contender(config, "second")]
    try:
        for p in procs:
            assert p.next_line(timeout=60) == "started"
        leader = None
        deadline = time.monotonic() + 20
        while leader is None and time.monotonic() < deadline:
            for p in procs:
                if p.next_line(timeout=0.05) == "leader":
                    leader = p
        assert leader is not None, "nobody acquired the lease"
        standby = next(p for p in procs if p is not leader)
        # for longer than the lease, the renewing leader keeps it: the standby says nothing
        assert standby.next_line(timeout=4.0) is None
        assert leader.next_line(timeout=0.01) is None  # and the leader never lost it
        assert lease(kube_api)["spec"]["holderIdentity"] == leader.identity

        os.kill(leader.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert standby.next_line(timeout=2 + 8) == "leader"
        waited = time.monotonic() - killed
        # not before the lease could have run out (last renewal at most ~0.2 s before the kill)
        assert waited >= 1.5
        spec = lease(kube_api)["spec"]
        assert spec["holderIdentity"] == standby.identity
        assert spec["leaseTransitions"] == 1
    finally:
        for p in procs:
            p.kill()
