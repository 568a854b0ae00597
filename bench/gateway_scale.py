"""Zero-loss scaling: the gateway with `xpool scale` versus Xinference's own replica removal.

Part 1 runs `xpool up` (embedded Xinference, the quickstart with chat at max 3 instances),
scales `chat` to 3, then keeps `--concurrency` clients busy (chat SSE streams and embeddings,
alternating) through the gateway while `xpool scale` moves chat 3 -> 1 -> 3 -> 1, `--cycles`
times; the load runs until the cycles are done and at least `--requests` were sent.

Part 2 sends the same load to Xinference directly: chat launched as ONE model UID with
`replica: 3`, and each cycle removes two replicas (DELETE /v1/models/{uid}/replicas/{id})
and adds them back (POST /v1/models/{uid}/replicas) -- Xinference's own mechanism.

Prints total / failed / incomplete-stream counts for both. Reports; asserts nothing.

Each torch model process starts one thread per core; on a small host the chat and embedding
processes then fight for the cores and the load runs about 4x slower. The benchmark runs its
model processes with `OMP_NUM_THREADS=1` (unless set) so both sides serve at full speed.

    python bench/gateway_scale.py --requests 10000 --cycles 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from xpool.adapters.xinference import XinferenceClient
from xpool.gateway.loadgen import (
    Load,
    LoadResult,
    chat_stream_request,
    embedding_request,
    running_up,
)
from xpool.local.models import resolve_local_sources
from xpool.local.runtime import EmbeddedXinference, free_port
from xpool.render.instances import stable_wants
from xpool.render.launch import launch_specs
from xpool.resolve import resolve_platform

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.yaml"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def platform_copy(directory: Path, port: int) -> Path:
    text = QUICKSTART.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    text = text.replace("instances: {min: 1, max: 2}", "instances: {min: 1, max: 3}")
    path = directory / "platform.yaml"
    path.write_text(text)
    return path


def steps(cycles: int) -> list[int]:
    """3 -> 1 -> 3 -> 1, `cycles` times (back to 3 between cycles)."""
    out: list[int] = []
    for c in range(cycles):
        out += [1, 3, 1] + ([3] if c < cycles - 1 else [])
    return out


def xpool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xpool.cli", *args], capture_output=True, text=True, check=False
    )


def run_load_until(load: Load, requests: int, action) -> LoadResult:
    load.start()
    action()
    while load.done_count() < requests:
        time.sleep(0.2)
    load.stop()
    return load.join(300)


def through_gateway(work: Path, args: argparse.Namespace) -> tuple[LoadResult, float]:
    port = free_port()
    platform = platform_copy(work, port)
    state = work / "state-gateway"
    with running_up(platform, state):
        scale = ["scale", str(platform), "chat", "--state-dir", str(state), "--instances"]
        xpool(*scale, "3")
        log("gateway: chat at 3 instances; load starts")
        load = Load(
            f"http://127.0.0.1:{port}",
            [chat_stream_request("chat", args.max_tokens), embedding_request("embedding")],
            total=10**9,
            concurrency=args.concurrency,
        )
        started = time.monotonic()

        def cycle() -> None:
            for n in steps(args.cycles):
                r = xpool(*scale, str(n))
                log(f"gateway: scale chat -> {n}: exit {r.returncode} ({load.done_count()} sent)")

        result = run_load_until(load, args.requests, cycle)
        return result, time.monotonic() - started


def replicas(http: httpx.Client, uid: str) -> list[dict]:
    return http.get(f"/v1/models/{uid}/replicas").json()


def directly(work: Path, args: argparse.Namespace) -> tuple[LoadResult, float]:
    state = work / "state-direct"
    resolved = resolve_platform(QUICKSTART)
    loaded, plan = resolved.loaded, resolved.plan
    specs = launch_specs(loaded.platform, plan, loaded.architectures)
    wants = resolve_local_sources(
        stable_wants(loaded.platform, specs, at_least=1), state, loaded.platform
    )
    xinf = EmbeddedXinference(state)
    endpoint = xinf.start(lambda _m: None)
    client = XinferenceClient(endpoint, timeout=120)
    http = httpx.Client(base_url=endpoint, timeout=300)
    try:
        uids = {}
        for w in wants:
            client.ensure_registered(w.model_type, w.registration)
            uid = f"{w.model}-direct"
            body = {**w.launch, "model_uid": uid, "replica": 3 if w.model == "chat" else 1}
            body = {k: v for k, v in body.items() if k not in ("worker_ip", "gpu_idx")}
            r = http.post("/v1/models", json=body)
            r.raise_for_status()
            uids[w.model] = uid
        chat = uids["chat"]
        log(f"direct: {chat} with replicas {[x['replica_id'] for x in replicas(http, chat)]}")
        load = Load(
            endpoint,
            [chat_stream_request(chat, args.max_tokens), embedding_request(uids["embedding"])],
            total=10**9,
            concurrency=args.concurrency,
        )
        started = time.monotonic()

        def cycle() -> None:
            for n in steps(args.cycles):
                live = sorted(
                    x["replica_id"] for x in replicas(http, chat) if x.get("status") == "READY"
                )
                if n < len(live):
                    for rid in live[n:]:
                        r = http.delete(f"/v1/models/{chat}/replicas/{rid}")
                        log(f"direct: remove replica {rid}: HTTP {r.status_code}")
                elif n > len(live):
                    r = http.post(f"/v1/models/{chat}/replicas", json={"replica": n - len(live)})
                    log(f"direct: add {n - len(live)} replica(s): HTTP {r.status_code}")
                    deadline = time.monotonic() + 300
                    while time.monotonic() < deadline:
                        ready = [x for x in replicas(http, chat) if x.get("status") == "READY"]
                        if len(ready) >= n:
                            break
                        time.sleep(0.5)
                log(f"direct: chat -> {n} replicas ({load.done_count()} sent)")

        result = run_load_until(load, args.requests, cycle)
        return result, time.monotonic() - started
    finally:
        http.close()
        client.close()
        xinf.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--skip-direct", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by `xpool up` and Xinference
    with tempfile.TemporaryDirectory(prefix="xpool-bench-") as tmp:
        work = Path(tmp)
        g, _gs = through_gateway(work, args)
        print(f"through the gateway (xpool scale, drain): {g.line()}", flush=True)
        if not args.skip_direct:
            d, _ds = directly(work, args)
            print(f"directly (Xinference replica removal):   {d.line()}", flush=True)
        print(
            json.dumps(
                {
                    "gateway": {
                        "total": g.total,
                        "failed": g.failed,
                        "incomplete": g.incomplete_streams,
                    },
                    **(
                        {}
                        if args.skip_direct
                        else {
                            "direct": {
                                "total": d.total,
                                "failed": d.failed,
                                "incomplete": d.incomplete_streams,
                            }
                        }
                    ),
                }
            )
        )


if __name__ == "__main__":
    main()
