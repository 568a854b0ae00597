"""Bearer tokens over real HTTP: the optional client API keys of `/v1/*` and the admin token
of `/-/admin/*`, each accepted only as `Authorization: Bearer <token>`; the keys from the
environment variable the platform file names; `xpool gateway` refusing to start open when
that variable is empty."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.gateway.serving import CHAT, Upstream, chat_table, gateway, upstream
from xpool.adapters.xinference import XinferenceClient
from xpool.errors import InputError
from xpool.gateway.control import Scaler
from xpool.gateway.metrics import GatewayMetrics
from xpool.gateway.wiring import client_keys, write_token
from xpool.local.admin import AdminClient
from xpool.resolve import resolve_platform

KEYS = ["k-first-0123456789", "k-second-9876543210"]
KEYS_ENV = "XPOOL_TEST_GATEWAY_KEYS"
HELLO = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
REFUSED_FORMS = [
    None,  # no header
    "k-first-0123456789",  # the bare key
    "Basic k-first-0123456789",
    "Token k-first-0123456789",
    "Bearer",
    "Bearer k-first",  # a prefix of a key
    "Bearer k-first-0123456789x",
    "Bearer k-first-0123456789,k-second-9876543210",
]


@pytest.fixture(scope="module")
def up() -> Iterator[Upstream]:
    with upstream() as running:
        yield running


def headers(authorization: str | None) -> dict[str, str]:
    return {} if authorization is None else {"Authorization": authorization}


# -- client API keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", REFUSED_FORMS)
def test_v1_refuses_anything_but_a_bearer_key(up: Upstream, authorization: str | None):
    with gateway(up, client_keys=KEYS) as g:
        for method, path, body in (("POST", CHAT, HELLO), ("GET", "/v1/models", None)):
            r = g.http.request(method, path, json=body, headers=headers(authorization))
            assert r.status_code == 401, (path, r.text)
            error = r.json()["error"]
            assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
            assert r.headers["www-authenticate"] == "Bearer"
            assert not any(key in r.text for key in KEYS)


def test_v1_accepts_each_key_as_a_bearer_token(up: Upstream):
    with gateway(up, client_keys=KEYS) as g:
        up.received.clear()
        for authorization in ("Bearer k-first-0123456789", "bearer k-second-9876543210"):
            r = g.http.post(CHAT, json=HELLO, headers=headers(authorization))
            assert r.status_code == 200, r.text
            models = g.http.get("/v1/models", headers=headers(authorization))
            assert [m["id"] for m in models.json()["data"]] == ["chat"]
        assert len(up.received) == 2
        assert g.http.get("/metrics").status_code == 200  # Prometheus scrapes without a key


def test_without_keys_v1_is_open(up: Upstream):
    with gateway(up) as g:
        assert g.http.post(CHAT, json=HELLO).status_code == 200


def test_the_key_is_checked_before_the_body_is_read(up: Upstream):
    with gateway(up, client_keys=KEYS) as g:
        big = b'{"model": "chat", "x": "' + b"x" * (17 * 2**20) + b'"}'
        assert g.http.post(CHAT, content=big).status_code == 401


def test_keys_come_from_the_variable_the_platform_file_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    platform = resolve_platform(keys_platform(tmp_path)).platform
    monkeypatch.setenv(KEYS_ENV, " k-first-0123456789 ,k-second-9876543210\n")
    assert client_keys(platform) == KEYS
    monkeypatch.setenv(KEYS_ENV, "k-first-0123456789\nk-second-9876543210\n")  # a Secret file
    assert client_keys(platform) == KEYS
    for bad in ("", " , ", "k-first-0123456789,kéy"):
        monkeypatch.setenv(KEYS_ENV, bad)
        with pytest.raises(InputError) as refused:
            client_keys(platform)
        assert KEYS_ENV in str(refused.value) and "k-first" not in str(refused.value)
    monkeypatch.delenv(KEYS_ENV)
    with pytest.raises(InputError):
        client_keys(platform)
    assert client_keys(resolve_platform(EXAMPLES / "quickstart.yaml").platform) == []


def keys_platform(tmp_path: Path) -> Path:
    """The quickstart with a remote Xinference nothing listens on, and client keys required."""
    text = (EXAMPLES / "quickstart.yaml").read_text(encoding="utf-8")
    old = "  gateway:\n    listen: 127.0.0.1:8000\n"
    assert old in text and "endpoint: embedded" in text
    text = text.replace(old, f"{old}    apiKeysEnv: {KEYS_ENV}\n")
    path = tmp_path / "platform.yaml"
    path.write_text(text.replace("endpoint: embedded", "endpoint: http://127.0.0.1:1"))
    return path


def test_xpool_gateway_will_not_serve_open_when_the_keys_are_missing(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != KEYS_ENV}
    run = subprocess.run(
        [sys.executable, "-m", "xpool.cli", "gateway", str(keys_platform(tmp_path))],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT / "toolkit")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert f"spec.gateway.apiKeysEnv: {KEYS_ENV} is not set" in run.stderr
    assert "Traceback" not in run.stderr


# -- the admin token -----------------------------------------------------------------------------


@pytest.fixture
def admin_gateway(up: Upstream, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A gateway with the admin endpoint (the real controller): its URL and admin token."""
    token = write_token(tmp_path).read_text().strip()
    table = chat_table()
    metrics = GatewayMetrics(table)
    scaler = Scaler(XinferenceClient(up.server.url), table, metrics, {}, {}, drain_timeout=1)
    with gateway(up, table=table, admin=scaler, admin_token=token, metrics=metrics) as g:
        yield g.server.url, token


def test_the_admin_token_counts_only_as_a_bearer_token(admin_gateway: tuple[str, str]):
    url, token = admin_gateway
    refused = [None, token, f"Basic {token}", f"Token {token}", f"{token} {token}", "Bearer x"]
    with httpx.Client(base_url=url) as http:
        for authorization in refused:
            r = http.get("/-/admin/instances", headers=headers(authorization))
            assert r.status_code == 401, authorization
            assert r.headers["www-authenticate"] == "Bearer"
            assert token not in r.text
        for authorization in (f"Bearer {token}", f"bearer {token}"):
            r = http.get("/-/admin/instances", headers=headers(authorization))
            assert r.status_code == 200, r.text


def test_the_admin_client_sends_the_token_as_bearer(admin_gateway: tuple[str, str]):
    url, token = admin_gateway
    with AdminClient(url, token) as client:
        assert [i["uid"] for i in client.instances()] == ["chat--1--1"]
        assert client.call("POST", "/-/admin/drain", {"uids": ["chat--1--1"]}) == {
            "draining": {"chat--1--1": 0}
        }
