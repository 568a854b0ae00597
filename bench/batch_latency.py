"""Interactive latency with and without a batch running, same run, and the batch's rate.

The real gateway app on uvicorn routes `chat` (one instance, request limit `--limit`) to a
real upstream HTTP server that emulates an engine (each in a process of its own, as the
client is): each request takes `--service` seconds,
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xpool.adapters.object_store import DirStore
from xpool.gateway.app import create_app
from xpool.gateway.batch_api import BatchLimits
from xpool.gateway.routing import RoutingTable
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


def serve_upstream(args: argparse.Namespace) -> None:
    engine = Engine(args.service, args.slowdown)
    app = Starlette(routes=[Route(CHAT, engine.chat, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def serve_gateway(args: argparse.Namespace) -> None:
    table = RoutingTable(seed=1)
    table.declare("chat", "LLM", "P1", {"1": 100})
    table.add("chat", "LLM", "chat--1--1", version="1", tier="P1", limit=args.limit)
    app = create_app(
        table,
        args.upstream,
        batch_store=DirStore(Path(args.store)),
        batch_limits=BatchLimits(reserve=args.reserve, instance_concurrency=args.concurrency),
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def spawn(*role: str) -> tuple[subprocess.Popen[bytes], str]:
    """This script in another role, in a process of its own (no GIL shared with the client),
    once it answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, *role, "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/")
            return proc, url
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{role[1]} did not start") from None
            time.sleep(0.1)


def measure(args: argparse.Namespace, gateway: str) -> None:
    report("alone", *asyncio.run(interactive(gateway, args.rate, args.seconds)))
    with httpx.Client(base_url=gateway, timeout=30) as http:
        batch_id = submit(http, args.lines)
        while http.get(f"/v1/batches/{batch_id}").json()["status"] == "validating":
            time.sleep(0.05)
        time.sleep(1.0)  # the batch runs: its upload and validation are not what is measured
        before, started = finished(http, batch_id), time.monotonic()
        times, refused = asyncio.run(interactive(gateway, args.rate, args.seconds))
        done, elapsed = finished(http, batch_id), time.monotonic() - started
    report("with a batch", times, refused)
    print(f"batch          {(done - before) / elapsed:7.1f} lines/s ({done} of {args.lines})")


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
    p.add_argument("--role", choices=("driver", "upstream", "gateway"), default="driver")
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--upstream", help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role == "upstream":
        return serve_upstream(args)
    if args.role == "gateway":
        return serve_gateway(args)
    shared = [
        *("--service", str(args.service), "--slowdown", str(args.slowdown)),
        *("--limit", str(args.limit), "--reserve", str(args.reserve)),
        *("--concurrency", str(args.concurrency)),
    ]
    processes = []
    with tempfile.TemporaryDirectory() as store:
        try:
            upstream, upstream_url = spawn("--role", "upstream", *shared)
            processes.append(upstream)
            gateway, gateway_url = spawn(
                "--role", "gateway", "--upstream", upstream_url, "--store", store, *shared
            )
            processes.append(gateway)
            measure(args, gateway_url)
        finally:
            for proc in processes:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    print(f"pid {proc.pid} did not stop within 30 s of SIGTERM; killed")
                    proc.kill()
                    proc.wait()


if __name__ == "__main__":
    main()
