"""The Batch API's records in an object store: files, batches and their progress parts.

Keys: `files/<id>.json` (the file object) and `files/<id>.jsonl` (its bytes);
`batches/<id>.json` (the batch object); `parts/<batch id>/<n>.jsonl` (finished output lines).
A part is written once, whole, and never changed: the lines a batch has finished are exactly
the lines of its parts, so a runner that restarts reads them back and runs only the rest
(each `custom_id` ends up once in the output or the error file). Ids grow with time
(`batch_<hex ns><random>`), so newest first is the ids' reverse order.

Every method is blocking I/O: the gateway calls them in a worker thread.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from xpool.adapters.object_store import ObjectStore
from xpool.batch.lines import jsonl


def new_id(prefix: str) -> str:
    return f"{prefix}{time.time_ns():016x}{secrets.token_hex(4)}"


class BatchBook:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    # -- files ---------------------------------------------------------------------------------

    def put_file(self, meta: dict[str, Any], content: bytes) -> None:
        """The bytes first: a file object is only ever seen with its bytes in place."""
        self.store.put(f"files/{meta['id']}.jsonl", content)
        self.store.put(f"files/{meta['id']}.json", json.dumps(meta).encode())

    def file(self, file_id: str) -> dict[str, Any] | None:
        return self._json(f"files/{file_id}.json") if _safe(file_id) else None

    def content(self, file_id: str) -> bytes | None:
        return self.store.get(f"files/{file_id}.jsonl") if _safe(file_id) else None

    def files(self) -> list[dict[str, Any]]:
        """Every file object, newest first."""
        keys = [k for k in self.store.keys("files/") if k.endswith(".json")]
        found = (self._json(k) for k in sorted(keys, reverse=True))
        return [meta for meta in found if meta is not None]

    def delete_file(self, file_id: str) -> None:
        self.store.delete(f"files/{file_id}.json")
        self.store.delete(f"files/{file_id}.jsonl")

    # -- batches -------------------------------------------------------------------------------

    def put_batch(self, batch: dict[str, Any]) -> None:
        self.store.put(f"batches/{batch['id']}.json", json.dumps(batch).encode())

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        return self._json(f"batches/{batch_id}.json") if _safe(batch_id) else None

    def batch_ids(self) -> list[str]:
        """Every batch id, newest first."""
        keys = self.store.keys("batches/")
        return sorted(
            (k.removeprefix("batches/").removesuffix(".json") for k in keys), reverse=True
        )

    # -- progress ------------------------------------------------------------------------------

    def put_part(self, batch_id: str, number: int, lines: list[dict[str, Any]]) -> None:
        self.store.put(f"parts/{batch_id}/{number:08d}.jsonl", jsonl(lines))

    def parts(self, batch_id: str) -> tuple[int, list[dict[str, Any]]]:
        """How many parts `batch_id` has and their output lines, in part order."""
        keys = self.store.keys(f"parts/{batch_id}/")
        lines: list[dict[str, Any]] = []
        for key in keys:
            data = self.store.get(key) or b""
            lines += [json.loads(raw) for raw in data.splitlines() if raw.strip()]
        return len(keys), lines

    def _json(self, key: str) -> dict[str, Any] | None:
        data = self.store.get(key)
        return None if data is None else json.loads(data)


def _safe(object_id: str) -> bool:
    """Whether a client-given id can name a key (letters, digits, `-`, `_` only)."""
    return 0 < len(object_id) <= 128 and all(
        c.isascii() and (c.isalnum() or c in "-_") for c in object_id
    )
