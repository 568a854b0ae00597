"""s3:// and file:// model sources against real processes: an S3 server on loopback that
verifies Signature Version 4 (tests/s3_server.py), the CLI as a subprocess, and `xpool up`
serving a model downloaded from S3 by a real embedded Xinference."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_models_cli import (
    CHECKSUMS,
    CONFIG,
    MODEL_BYTES,
    VOCAB,
    WEIGHTS,
    error_lines,
    models,
    sha256,
    version,
    write_model_dir,
    write_platform,
)
from tests.conftest import ROOT
from tests.s3_server import S3Server, moto_python
from xpool.adapters.s3 import S3Client, S3Config
from xpool.adapters.sources import MARKER, check_source, fetch_s3
from xpool.config.loader import load_platform
from xpool.errors import InputError
from xpool.gateway.loadgen import running_up
from xpool.local.models import minilm_path, resolve_local_sources
from xpool.local.runtime import free_port
from xpool.render.instances import stable_wants, version_wants
from xpool.render.launch import launch_specs
from xpool.resolve import resolve_platform

FILES = {"model.safetensors": WEIGHTS, "config.json": CONFIG, "tokenizer/vocab.txt": VOCAB}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    python = moto_python()
    if python is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]' outside the venv)")
    server = S3Server(python, tmp_path_factory.mktemp("s3") / "moto.log").start()
    try:
        for name, data in FILES.items():
            server.put(f"emb/v1/{name}", data)
        yield server
    finally:
        server.stop()


def object_gets(server: S3Server, prefix: str) -> int:
    """GETs of single objects under `prefix` in the server's request log (listings have `?`)."""
    pattern = re.compile(rf'"GET /{server.bucket}/{re.escape(prefix)}[^ ?]* HTTP')
    return len(pattern.findall(server.log.read_text()))


def s3_platform(tmp_path: Path, source: str, **fields) -> Path:
    return write_platform(tmp_path, [version("1", source, **fields)])


def test_listing_follows_continuation_and_keys_with_spaces(s3: S3Server, tmp_path: Path):
    names = ["a.txt", "b c.txt", "d/e-f.txt", "g_h.txt", "i.txt"]
    for n, name in enumerate(names):
        s3.put(f"paged/{name}", f"object {n}".encode())
    with S3Client(s3.config()) as client:
        listed = client.list_objects(s3.bucket, "paged/", page_size=2)
        assert [o.key for o in listed] == [f"paged/{n}" for n in names]
        assert [o.size for o in listed] == [len(f"object {n}") for n in range(5)]
        size, digest = client.download(s3.bucket, "paged/b c.txt", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"object 1"
    assert (size, digest) == (8, sha256(b"object 1"))


def test_check_passes_with_the_right_checksums_and_size(s3: S3Server, tmp_path: Path):
    platform = s3_platform(
        tmp_path, "s3://models/emb/v1", checksums=CHECKSUMS, sizeBytes=MODEL_BYTES
    )
    result = models(
        "show", str(platform), "embedding", "--check", "-o", "json", state=tmp_path, env=s3.env()
    )
    assert result.returncode == 0, result.stderr
    check = json.loads(result.stdout)["model"]["versions"][0]["check"]
    assert check == {
        "scheme": "s3",
        "checked": True,
        "files": 3,
        "totalBytes": MODEL_BYTES,
        "checksumsVerified": 2,
        "note": "ok",
    }


def test_wrong_secret_is_one_line_naming_the_variable_not_the_secret(s3: S3Server, tmp_path: Path):
    platform = s3_platform(tmp_path, "s3://models/emb/v1", checksums=CHECKSUMS)
    wrong = "wrong-secret-XYZ123"
    result = models(
        "show",
        str(platform),
        "embedding",
        "--check",
        state=tmp_path,
        env=s3.env(AWS_SECRET_ACCESS_KEY=wrong),
    )
    assert result.returncode == 2, result.stderr
    (error,) = error_lines(result.stderr)
    assert error.startswith("error: model 'embedding' version '1': s3://models/emb/v1/: ")
    assert "refused the credentials (HTTP 403 SignatureDoesNotMatch)" in error
    assert "AWS_SECRET_ACCESS_KEY" in error
    for secret in (wrong, s3.secret_key):
        assert secret not in result.stderr and secret not in result.stdout


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("s3://models/nothing/here", "no objects under s3://models/nothing/here/"),
        ("s3://no-such-bucket/emb/v1", "bucket does not exist"),
    ],
)
def test_missing_source_is_one_line(s3: S3Server, tmp_path: Path, source: str, expected: str):
    platform = s3_platform(tmp_path, source)
    result = models("show", str(platform), "embedding", "--check", state=tmp_path, env=s3.env())
    assert result.returncode == 2, result.stderr
    (error,) = error_lines(result.stderr)
    assert expected in error and "model 'embedding' version '1'" in error


def test_checksum_and_size_mismatches_name_the_file(s3: S3Server, tmp_path: Path):
    bad = dict(CHECKSUMS, **{"config.json": sha256(b"other")})
    platform = s3_platform(tmp_path, "s3://models/emb/v1", checksums=bad)
    result = models("show", str(platform), "embedding", "--check", state=tmp_path, env=s3.env())
    assert result.returncode == 2
    (error,) = error_lines(result.stderr)
    assert f"config.json: sha256 mismatch (expected {sha256(b'other')[:12]}..." in error
    platform = s3_platform(tmp_path, "s3://models/emb/v1", sizeBytes=MODEL_BYTES + 1)
    result = models("show", str(platform), "embedding", "--check", state=tmp_path, env=s3.env())
    (error,) = error_lines(result.stderr)
    assert f"holds {MODEL_BYTES:,} bytes in 3 files but sizeBytes is {MODEL_BYTES + 1:,}" in error


def test_unreachable_endpoint_is_retried_then_exit_3(tmp_path: Path):
    platform = s3_platform(tmp_path, "s3://models/emb/v1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "not-printed-secret",
    }
    result = models("show", str(platform), "embedding", "--check", state=tmp_path, env=env)
    assert result.returncode == 3, result.stderr
    (error,) = error_lines(result.stderr)
    assert error.startswith("error: model 'embedding' version '1': s3://models/emb/v1/: ")
    assert "still failed after 4 attempts" in error and "ConnectError" in error
    assert "not-printed-secret" not in result.stderr


def test_an_endpoint_that_is_not_s3_is_named(tmp_path: Path):
    """A plain web server at AWS_ENDPOINT_URL answers 200 with HTML, not an S3 listing."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "models").write_text("<html><body><p>a web page</p></body></html>")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path / "www",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_for_http(endpoint)
        config = S3Config(endpoint, "us-east-1", "AKIAEXAMPLE", "secret")
        with S3Client(config) as client, pytest.raises(InputError) as raised:
            client.list_objects("models", "emb/")
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert str(raised.value).endswith(
        f"s3://models/emb/: {endpoint} did not answer with an S3 listing; check AWS_ENDPOINT_URL"
    )


def wait_for_http(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def test_fetch_downloads_once_and_again_when_the_source_changes(s3: S3Server, tmp_path: Path):
    for name, data in FILES.items():
        s3.put(f"fetch/v1/{name}", data)
    platform = s3_platform(tmp_path, "s3://models/fetch/v1", checksums=CHECKSUMS)
    v = load_platform(platform).platform.spec.models[0].versions[0]
    root = tmp_path / "state" / "models" / "s3"
    with S3Client(s3.config()) as client:
        copy = fetch_s3("embedding", v, root, client)
        assert copy == root / "models" / "fetch" / "v1"
        assert {p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()} == {
            *FILES,
            MARKER,
        }
        assert all((copy / name).read_bytes() == data for name, data in FILES.items())
        gets, inode = object_gets(s3, "fetch/"), copy.stat().st_ino
        assert gets == 3

        assert fetch_s3("embedding", v, root, client) == copy
        assert object_gets(s3, "fetch/") == gets and copy.stat().st_ino == inode

        s3.put("fetch/v1/tokenizer/vocab.txt", VOCAB + b"more\n")  # not checksummed
        fetch_s3("embedding", v, root, client)
        assert object_gets(s3, "fetch/") == gets + 3
        assert (copy / "tokenizer" / "vocab.txt").read_bytes() == VOCAB + b"more\n"

        s3.put("fetch/v1/config.json", b"{}")  # checksummed: the old copy is not replaced
        with pytest.raises(InputError, match=r"config\.json: sha256 mismatch"):
            fetch_s3("embedding", v, root, client)
    assert (copy / "config.json").read_bytes() == CONFIG
    assert [p.name for p in copy.parent.iterdir()] == ["v1"]  # no partial download left


def test_resolve_checks_file_sources_and_points_s3_at_a_verified_copy(s3: S3Server, tmp_path: Path):
    source = write_model_dir(tmp_path / "local-model")
    platform = write_platform(
        tmp_path,
        [
            version("1", "s3://models/emb/v1", checksums=CHECKSUMS, sizeBytes=MODEL_BYTES),
            version("2", source.as_uri(), checksums=CHECKSUMS, weight=0),
        ],
    )
    resolved = resolve_platform(platform)
    loaded, plan = resolved.loaded, resolved.plan
    specs = launch_specs(loaded.platform, plan, loaded.architectures)
    by_version, _ = version_wants(
        loaded.platform, specs, stable_wants(loaded.platform, specs, at_least=1)
    )
    wants = list(by_version.values())  # every version, as `xpool up` resolves them
    state = tmp_path / "state"
    with S3Client(s3.config()) as client:
        s3_want, file_want = resolve_local_sources(wants, state, loaded.platform, s3=client)
        copy = state / "models" / "s3" / "models" / "emb" / "v1"
        assert s3_want.registration["model_specs"][0]["model_uri"] == copy.as_uri()
        assert file_want.registration == wants[1].registration  # checked in place, unchanged

        (source / "model.safetensors").write_bytes(WEIGHTS[::-1])
        with pytest.raises(InputError) as raised:
            resolve_local_sources(wants, state, loaded.platform, s3=client)
    (problem,) = raised.value.problems
    assert str(problem).startswith(f"model 'embedding' version '2': {source.as_uri()}: ")
    assert "model.safetensors: sha256 mismatch" in str(problem)


def test_check_source_without_credentials_says_which_variables(tmp_path: Path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    platform = s3_platform(tmp_path, "s3://models/emb/v1")
    v = load_platform(platform).platform.spec.models[0].versions[0]
    with pytest.raises(InputError, match="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        check_source("embedding", v)


def test_up_serves_a_model_downloaded_from_s3(s3: S3Server, tmp_path: Path, monkeypatch):
    """The shipped MiniLM checkpoint uploaded to S3, then `xpool up` with an s3:// source:
    the embedded Xinference loads the downloaded copy, and `xpool models` sees it running."""
    model = minilm_path()
    files = {p.relative_to(model).as_posix(): p for p in model.rglob("*") if p.is_file()}
    for name, path in files.items():
        s3.put(f"minilm/1/{name}", path.read_bytes())
    size = sum(p.stat().st_size for p in files.values())
    platform = write_platform(
        tmp_path,
        [
            version(
                "1",
                "s3://models/minilm/1",
                checksums={"config.json": sha256((model / "config.json").read_bytes())},
                sizeBytes=size,
                metadata={"parameters": "22M"},
            )
        ],
        name="s3-up",
    )
    for key, value in s3.env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    state = tmp_path / "state"
    with running_up(platform, state, stderr=subprocess.PIPE, cwd=ROOT):
        gateway = json.loads((state / "up.json").read_text())["gateway"]
        r = httpx.post(
            f"{gateway}/v1/embeddings", json={"model": "embedding", "input": "hi"}, timeout=60
        )
        assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 384
        listed = models("list", str(platform), "-o", "json", state=state)
        assert listed.returncode == 0, listed.stderr
        row = json.loads(listed.stdout)["versions"][0]
        assert row["instances"] == {"ready": 1, "loading": 0, "draining": 0, "failed": 0}
        assert "no gateway answered" not in listed.stderr
        shown = models("show", str(platform), "embedding", state=state)
        assert re.search(r"^embedding--1--1 +1 +ready +0 ", shown.stdout, re.M), shown.stdout
    copy = state / "models" / "s3" / "models" / "minilm" / "1"
    assert (copy / "model.safetensors").stat().st_size == files["model.safetensors"].stat().st_size
