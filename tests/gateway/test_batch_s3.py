"""The Batch API's S3 store against a real S3-compatible server (moto, signatures checked):
the S3 client's put, get and delete; a batch run end to end on the S3 store, and finished by
a second gateway on the same bucket prefix."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.gateway.serving import CHAT, TokenUpstream, gateway
from tests.gateway.test_batch_runner import chat, submit
from tests.s3_server import S3Server, moto_python
from xpool.adapters.object_store import S3Store
from xpool.adapters.s3 import S3Client
from xpool.errors import InputError


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    python = moto_python()
    if python is None:
        pytest.skip("moto_server is not installed (scripts/test installs it, or names the command)")
    server = S3Server(python, tmp_path_factory.mktemp("s3") / "moto.log", bucket="batches")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_put_get_keys_delete(s3: S3Server):
    with S3Client(s3.config()) as client:
        store = S3Store(client, "s3://batches/unit/a")
        assert store.get("files/x.json") is None
        store.put("files/x.json", b'{"a": 1}')
        store.put("parts/b/00000000.jsonl", b"line\n" * 1000)
        store.put("files/x.json", b'{"a": 2}')  # replaced whole
        assert store.get("files/x.json") == b'{"a": 2}'
        assert store.keys("") == ["files/x.json", "parts/b/00000000.jsonl"]
        assert store.keys("parts/") == ["parts/b/00000000.jsonl"]
        store.delete("files/x.json")
        store.delete("files/x.json")  # gone already: no error
        assert store.get("files/x.json") is None
        assert S3Store(client, "s3://batches/unit").keys("a/") == ["a/parts/b/00000000.jsonl"]


def test_refused_credentials_name_the_variables(s3: S3Server):
    with S3Client(s3.config(secret="wrong")) as client:
        with pytest.raises(InputError, match="AWS_SECRET_ACCESS_KEY"):
            client.put("batches", "k", b"x")
        with pytest.raises(InputError, match="refused the credentials"):
            client.get("batches", "k")


def test_a_batch_on_the_s3_store_survives_a_new_gateway(s3: S3Server, up: TokenUpstream):
    with S3Client(s3.config()) as client:
        store = S3Store(client, "s3://batches/gw")
        with gateway(up, table=chat(8), batch_store=store) as g:
            batch_id = submit(g.http, 40)
        with gateway(up, table=chat(8), batch_store=store) as g:
            deadline = time.monotonic() + 60
            while (b := g.http.get(f"/v1/batches/{batch_id}").json())["status"] != "completed":
                assert time.monotonic() < deadline, b
                time.sleep(0.1)
            text = g.http.get(f"/v1/files/{b['output_file_id']}/content").text
        ids = sorted(json.loads(line)["custom_id"] for line in text.splitlines())
        assert ids == sorted(f"q{i}" for i in range(40))
        assert all(key.startswith(("files/", "batches/", "parts/")) for key in store.keys(""))
        assert b["endpoint"] == CHAT
