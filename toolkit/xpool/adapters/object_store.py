"""Where the Batch API keeps its bytes: one small key -> bytes interface, two adapters.

`DirStore` keeps objects as files under a directory (the state directory of `xpool up`); a
write goes to a temporary file renamed into place, so a reader or a restart sees the old
bytes or the new, never a torn file. `S3Store` keeps them in an S3-compatible bucket under
a prefix (the gateway on Kubernetes), where a PUT is atomic too. Keys are `/`-separated
paths of letters, digits, `-`, `_` and `.` (the gateway builds them; clients never name one).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from xpool.adapters.s3 import S3Client, parse_s3


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Write `key` whole and atomically."""

    def get(self, key: str) -> bytes | None:
        """The bytes of `key`, or None when it does not exist."""

    def keys(self, prefix: str) -> list[str]:
        """Every key starting with `prefix`, sorted."""

    def delete(self, key: str) -> None:
        """Remove `key` (nothing when it is gone already)."""


class DirStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def keys(self, prefix: str) -> list[str]:
        if not self.root.is_dir():
            return []
        found = (
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        return sorted(k for k in found if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    def __init__(self, client: S3Client, uri: str) -> None:
        self.client = client
        self.bucket, prefix = parse_s3(uri)
        self.prefix = f"{prefix}/" if prefix else ""

    def put(self, key: str, data: bytes) -> None:
        self.client.put(self.bucket, self.prefix + key, data)

    def get(self, key: str) -> bytes | None:
        return self.client.get(self.bucket, self.prefix + key)

    def keys(self, prefix: str) -> list[str]:
        found = self.client.list_objects(self.bucket, self.prefix + prefix)
        return sorted(o.key.removeprefix(self.prefix) for o in found)

    def delete(self, key: str) -> None:
        self.client.delete(self.bucket, self.prefix + key)


def open_store(location: str, state_dir: Path) -> ObjectStore:
    """The store `spec.batch.store` names: an `s3://bucket/prefix` URI (credentials from the
    AWS_* environment), else a directory (relative to `state_dir`)."""
    if location.startswith("s3://"):
        return S3Store(S3Client.from_env(), location)
    return DirStore(state_dir / location)
