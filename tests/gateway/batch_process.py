"""A gateway with the Batch API in a process of its own, for tests that kill it (SIGKILL):
`python -m tests.gateway.batch_process UPSTREAM STORE PORT` routes `chat` (`chat_table()`) to
UPSTREAM and keeps batches in the directory STORE."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from tests.gateway.serving import chat_table
from xpool.adapters.object_store import DirStore
from xpool.gateway.app import create_app


def main(upstream: str, store: str, port: str) -> None:
    app = create_app(chat_table(), upstream, batch_store=DirStore(Path(store)))
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main(*sys.argv[1:])
