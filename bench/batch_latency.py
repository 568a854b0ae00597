"""Interactive latency with and without a batch running, same run, and the batch's rate.

The real gateway app on uvicorn routes `chat` (one instance, request limit `--limit`) to a
real upstream HTTP server that emulates an engine: each request takes `--service` seconds,
`--slowdown` longer per other request in flight (a batch shares the accelerator). Interactive
requests arrive at `--rate` per second, open loop, for `--seconds`: first alone, then while a
batch of `--lines` chat lines runs through the Batch API. Prints, per phase, the interactive
time to first byte (p50, p99) and refusals (429), and the batch lines finished per second.

    python bench/batch_latency.py --seconds 20 --rate 10 --lines 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xpool.adapters.object_store import DirStore
from xpool.gateway.app import create_app
from xpool.gateway.batch_api import BatchLimits
from xpool.gateway.routing import RoutingTable
from xpool.gateway.server import GatewayServer
from xpool.local.runtime import free_port

CHAT = "/v1/chat/completions"
HELLO = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}


class Engine:
    """Service time grows with the requests in flight, as on a shared accelerator."""

    def __init__(self, service: float, slowdown: float) -> None:
        self.service, self.slowdown, self.inflight = service, slowdown, 0

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.inflight += 1
        try:
            await asyncio.sleep(self.service * (1 + self.slowdown * (self.inflight - 1)))
        finally:
            self.inflight -= 1
        usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        message = {"role": "assistant", "content": "ok"}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return JSONResponse({"model": body["model"], "choices": [choice], "usage": usage})


async def interactive(base: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """Open-loop arrivals: the time to first byte of each 200, and how many were refused."""
    times: list[float] = []
    refused = 0

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal refused
        started = time.perf_counter()
        async with client.stream("POST", CHAT, json=HELLO) as r:
            async for _ in r.aiter_bytes():
                if r.status_code == 200:
                    times.append(time.perf_counter() - started)
                break
            if r.status_code != 200:
                refused += 1

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        tasks = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            tasks.append(asyncio.create_task(one(client)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return times, refused


def submit(http: httpx.Client, lines: int) -> str:
    rows = [
        {"custom_id": f"b{i}", "method": "POST", "url": CHAT, "body": HELLO} for i in range(lines)
    ]
    raw = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    f = http.post("/v1/files", files={"file": ("b.jsonl", raw)}, data={"purpose": "batch"})
    f.raise_for_status()
    body = {"input_file_id": f.json()["id"], "endpoint": CHAT, "completion_window": "24h"}
    b = http.post("/v1/batches", json=body)
    b.raise_for_status()
    return b.json()["id"]


def finished(http: httpx.Client, batch_id: str) -> int:
    counts = http.get(f"/v1/batches/{batch_id}").json()["request_counts"]
    return counts["completed"] + counts["failed"]


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) > 1 else 0.0


def report(phase: str, times: list[float], refused: int) -> None:
    print(
        f"{phase:<14} interactive TTFT p50 {quantile(times, 0.5) * 1000:7.1f} ms  "
        f"p99 {quantile(times, 0.99) * 1000:7.1f} ms  answered {len(times)}  refused {refused}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--rate", type=float, default=10, help="interactive requests per second")
    p.add_argument("--lines", type=int, default=2000, help="batch lines")
    p.add_argument("--limit", type=int, default=8, help="the instance's request limit")
    p.add_argument("--service", type=float, default=0.1, help="seconds per request alone")
    p.add_argument("--slowdown", type=float, default=0.1, help="added share per other request")
    p.add_argument("--reserve", type=int, default=1, help="spec.batch.reserve")
    p.add_argument("--concurrency", type=int, default=4, help="spec.batch.instanceConcurrency")
    args = p.parse_args()

    engine = Engine(args.service, args.slowdown)
    upstream = GatewayServer(
        Starlette(routes=[Route(CHAT, engine.chat, methods=["POST"])]), f"127.0.0.1:{free_port()}"
    )
    upstream.start()
    table = RoutingTable(seed=1)
    table.declare("chat", "LLM", "P1", {"1": 100})
    table.add("chat", "LLM", "chat--1--1", version="1", tier="P1", limit=args.limit)
    with tempfile.TemporaryDirectory() as store:
        app = create_app(
            table,
            upstream.url,
            batch_store=DirStore(Path(store)),
            batch_limits=BatchLimits(reserve=args.reserve, instance_concurrency=args.concurrency),
        )
        gateway = GatewayServer(app, f"127.0.0.1:{free_port()}")
        gateway.start()
        try:
            report("alone", *asyncio.run(interactive(gateway.url, args.rate, args.seconds)))
            with httpx.Client(base_url=gateway.url, timeout=30) as http:
                batch_id = submit(http, args.lines)
                before, started = finished(http, batch_id), time.monotonic()
                times, refused = asyncio.run(interactive(gateway.url, args.rate, args.seconds))
                done, elapsed = finished(http, batch_id), time.monotonic() - started
            report("with a batch", times, refused)
            print(
                f"batch          {(done - before) / elapsed:7.1f} lines/s ({done} of {args.lines})"
            )
        finally:
            gateway.stop()
            upstream.stop()


if __name__ == "__main__":
    main()
