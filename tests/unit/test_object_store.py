"""The directory adapter of the Batch API's store: whole writes by rename, keys by prefix
(a write's temporary file never listed), deletes that tolerate a missing key."""

from __future__ import annotations

from pathlib import Path

from xpool.adapters.object_store import DirStore, S3Store, open_store


def test_dir_store_round_trip(tmp_path: Path):
    store = DirStore(tmp_path / "batches")
    assert store.keys("") == [] and store.get("files/a.json") is None
    store.put("files/a.json", b"1")
    store.put("files/a.json", b"22")
    store.put("parts/b/00000000.jsonl", b"x\n")
    (tmp_path / "batches" / "parts" / "b" / ".tmp-left-by-a-crash").write_bytes(b"torn")
    assert store.get("files/a.json") == b"22"
    assert store.keys("") == ["files/a.json", "parts/b/00000000.jsonl"]
    assert store.keys("parts/") == ["parts/b/00000000.jsonl"]
    store.delete("files/a.json")
    store.delete("files/a.json")
    assert store.keys("files/") == []


def test_open_store_reads_the_location(tmp_path: Path, monkeypatch):
    local = open_store("batches", tmp_path)
    assert isinstance(local, DirStore) and local.root == tmp_path / "batches"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    store = open_store("s3://bucket/some/prefix", tmp_path)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("bucket", "some/prefix/")
    store.client.close()
