"""ensure_instances against one real embedded Xinference (module-scoped: one start)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import QUICKSTART
from xpool.adapters.xinference import XinferenceClient, ensure_instances
from xpool.errors import RemoteError
from xpool.local.models import resolve_local_sources
from xpool.local.runtime import EmbeddedXinference, pid_alive
from xpool.render.instances import Want, stable_wants
from xpool.render.launch import launch_specs
from xpool.resolve import resolve_platform

DESIRED = ["chat--1--1", "embedding--1--1"]


class Runtime:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.xinf: EmbeddedXinference | None = None
        self.client: XinferenceClient | None = None

    def start(self) -> None:
        self.xinf = EmbeddedXinference(self.state)
        endpoint = self.xinf.start(lambda _: None)
        self.client = XinferenceClient(endpoint, timeout=60)

    def stop(self) -> None:
        if self.client:
            self.client.close()
        if self.xinf:
            self.xinf.stop()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = Runtime(tmp_path_factory.mktemp("xinference-state"))
    rt.start()
    yield rt
    rt.stop()


@pytest.fixture(scope="module")
def wants(runtime: Runtime) -> list[Want]:
    resolved = resolve_platform(QUICKSTART)
    loaded, plan = resolved.loaded, resolved.plan
    specs = launch_specs(loaded.platform, plan, loaded.architectures)
    return resolve_local_sources(
        stable_wants(loaded.platform, specs, at_least=1), runtime.state, loaded.platform
    )


def ours(client: XinferenceClient) -> list[str]:
    return sorted(i.uid for i in client.instances())


class Interrupted(Exception):
    pass


def test_interrupted_ensure_then_rerun_adopts_and_completes(runtime: Runtime, wants):
    """xpool stopped after the first instance was ready: a re-run launches no duplicate (it
    waits for the one still loading), and one that went missing is launched again."""

    def stop_after_first(_want: Want, _uid: str) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        ensure_instances(runtime.client, wants, on_ready=stop_after_first)
    assert ours(runtime.client) == DESIRED  # both submitted, the second maybe still loading

    result = ensure_instances(runtime.client, wants)
    assert result.adopted == DESIRED and result.launched == []
    assert ours(runtime.client) == DESIRED

    runtime.client.terminate(DESIRED[1])
    result = ensure_instances(runtime.client, wants)
    assert result.adopted == [DESIRED[0]]
    assert result.launched == [DESIRED[1]]
    assert ours(runtime.client) == DESIRED
    assert all(i.ready for i in runtime.client.instances())


def test_ensure_is_idempotent(runtime: Runtime, wants):
    before = runtime.client.instances()
    result = ensure_instances(runtime.client, wants)
    assert result.launched == [] and result.replaced == []
    assert result.adopted == DESIRED
    assert set(result.registered.values()) == {"unchanged"}
    assert runtime.client.instances() == before


def test_changed_registration_refused_while_instances_run(runtime: Runtime, wants):
    chat = next(w for w in wants if w.model == "chat")
    changed = dict(chat.registration, model_description="something else")
    with pytest.raises(RemoteError, match="chat--1--1"):
        runtime.client.ensure_registered("LLM", changed, runtime.client.instances())


def test_kill_xinference_mid_ensure_then_rerun_converges(runtime: Runtime, wants):
    """Xinference dies after the first launch of an apply: the re-run (after a restart, which
    finds the stale pid file) converges to exactly the desired UIDs."""
    for uid in DESIRED:
        runtime.client.terminate(uid)
    assert ours(runtime.client) == []
    pid = runtime.xinf.pid

    def kill_xinference(_want: Want, _uid: str) -> None:
        os.killpg(pid, signal.SIGKILL)
        runtime.xinf.process.wait(timeout=30)

    with pytest.raises(RemoteError):
        ensure_instances(runtime.client, wants, on_ready=kill_xinference)
    assert not pid_alive(pid)
    assert (runtime.state / "xinference.pid").exists()  # left behind: stale

    runtime.client.close()
    runtime.xinf.process = None
    runtime.start()  # removes the stale pid file, starts a new Xinference on the same home
    result = ensure_instances(runtime.client, wants)
    assert ours(runtime.client) == DESIRED
    assert sorted(result.uids) == DESIRED
    again = ensure_instances(runtime.client, wants)
    assert again.launched == [] and ours(runtime.client) == DESIRED
