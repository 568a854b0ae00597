"""Canary gate: false rollbacks of an identical version, missed regressions of a degraded one.

Everything real: an embedded Xinference (CPU) behind a fault-injecting HTTP proxy that this
benchmark starts, `xpool up` pointed at the proxy, `xpool reconcile --loop`, and clients
sending embedding requests through the gateway the whole time. Versions 1 and 2 of the
embedding model are the same weights and engine (a canary that cannot be worse); version 3
is the same too, but the proxy degrades every request to its instances: `--latency` seconds
added before forwarding, or `--errors` of them answered 500 (alternately, one kind per
degraded rollout). Noise: bursts that double the client concurrency for a few seconds at
random, and a CPU burner process switched on and off at random (the machine has few cores).

Each rollout is `xpool rollout start ... --steps 50,100 --interval 30s` (override with
`--steps`/`--interval`); it ends completed or rolled back, or is held (inconclusive after its
extensions; watched `--hold-wait` more seconds, since a held step still rolls back on
overwhelming evidence). Prints one line per rollout and then: false-rollback rate (identical
rolled back or held), missed-regression rate (degraded not rolled back), median time to
decision and the end-of-step looks each needed. Goals (printed, not asserted): no false
rollback, every degraded version rolled back in its first step.

    python bench/rollout.py --identical 10 --degraded 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xpool.gateway.loadgen import running_up
from xpool.local.models import minilm_path
from xpool.local.runtime import EmbeddedXinference, free_port

ROOT = Path(__file__).resolve().parent.parent
DEGRADED = "3"


@dataclass
class Faults:
    """What the proxy does to requests for the degraded version's instances."""

    latency: float = 0.0
    errors: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))


def fault_proxy(upstream: str, faults: Faults) -> Starlette:
    """Forward everything to Xinference; degrade requests whose body names an instance of
    version 3 (`embedding--3--N`)."""
    client = httpx.AsyncClient(base_url=upstream, timeout=120)

    async def forward(request: Request) -> Response:
        body = await request.body()
        target = ""
        if request.method == "POST" and body[:1] == b"{":
            try:
                target = str(json.loads(body).get("model", ""))
            except ValueError:
                target = ""
        if target.startswith(f"embedding--{DEGRADED}--"):
            if faults.errors and faults.rng.random() < faults.errors:
                return JSONResponse({"detail": "injected fault"}, status_code=500)
            if faults.latency:
                await asyncio.sleep(faults.latency)
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        upstream_response = await client.request(
            request.method,
            request.url.path,
            params=request.query_params,
            content=body,
            headers=headers,
        )
        passed = {
            k: v
            for k, v in upstream_response.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
        }
        return Response(upstream_response.content, upstream_response.status_code, passed)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


def serve_in_thread(app: Starlette, port: int) -> uvicorn.Server:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def platform_file(tmp: Path, proxy: str, gateway_port: int) -> Path:
    uri = minilm_path().resolve().as_uri()
    versions = "".join(
        f'        - {{version: "{v}", source: "{uri}", weightPrecision: fp32,\n'
        "           engines: {cpu: sentence_transformers}}\n"
        for v in ("1", "2", DEGRADED)
    )
    text = f"""\
apiVersion: xpool.io/v1alpha1
kind: Platform
metadata: {{name: rollout-bench}}
spec:
  xinference: {{endpoint: "{proxy}"}}
  gateway: {{listen: "127.0.0.1:{gateway_port}"}}
  pools:
    - {{name: local, vendor: cpu, accelerator: cpu, nodes: 1, acceleratorsPerNode: 4}}
  autoscaling:
    scaleDown: {{stabilization: 600s}}
    drainTimeout: 60s
  models:
    - name: embedding
      type: embedding
      tier: P1
      architecture: all-minilm-l6-v2
      versions:
{versions}      context: {{batch: 8, seqLen: 256}}
      slo: {{ttftMs: 1000}}
      demand: {{peakQps: 20}}
      perInstanceQps: 200
      instances: {{min: 1, max: 1}}
"""
    path = tmp / "platform.yaml"
    path.write_text(text)
    return path


class Clients:
    """Embedding requests through the gateway: `base` clients always, as many again during
    bursts (a few seconds at random). Counts every answer that is not a 200."""

    def __init__(self, gateway: str, base: int) -> None:
        self.gateway, self.base = gateway, base
        self.burst = threading.Event()
        self.stop = threading.Event()
        self.sent = self.failed = 0
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(2 * base)
        ] + [threading.Thread(target=self._bursts, daemon=True)]

    def start(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def _bursts(self) -> None:
        rng = random.Random(11)
        while not self.stop.wait(rng.uniform(5, 15)):
            self.burst.set()
            self.stop.wait(rng.uniform(2, 6))
            self.burst.clear()

    def _worker(self, i: int) -> None:
        with httpx.Client(base_url=self.gateway, timeout=120) as c:
            n = 0
            while not self.stop.is_set():
                if i >= self.base and not self.burst.wait(0.5):
                    continue
                n += 1
                body = {"model": "embedding", "input": f"client {i} sentence {n % 13}"}
                try:
                    ok = c.post("/v1/embeddings", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with self.lock:
                    self.sent += 1
                    self.failed += not ok


class Burner:
    """A busy-loop process, paused and resumed at random: other load on the machine."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        self.stop = threading.Event()
        threading.Thread(target=self._toggle, daemon=True).start()

    def _toggle(self) -> None:
        rng = random.Random(13)
        running = True
        while not self.stop.wait(rng.uniform(3, 12)):
            os.kill(self.proc.pid, signal.SIGSTOP if running else signal.SIGCONT)
            running = not running

    def close(self) -> None:
        self.stop.set()
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        self.proc.wait(10)


def xpool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xpool.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def current(state: Path) -> dict[str, Any]:
    path = state / "rollouts.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())["rollouts"].get("embedding", {})


@dataclass
class Outcome:
    kind: str  # identical | latency | errors
    target: str
    phase: str
    seconds: float
    steps: int  # end-of-step looks with a gate verdict (steps passed, extended, the last)
    reason: str


def run_rollout(platform: Path, state: Path, target: str, args: argparse.Namespace) -> Outcome:
    started = time.time()
    out = xpool(
        "rollout", "start", str(platform), "embedding", "--to", target,
        "--steps", args.steps, "--interval", args.interval, "--state-dir", str(state),
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    deadline = started + args.timeout
    held_since = None
    while time.time() < deadline:
        r = current(state)
        mine = r.get("canary") == target
        if mine and r.get("phase") not in ("launching", "shifting"):
            return _outcome(r, target, r["phase"], started)
        # held for an operator; its interim looks still roll a bad canary back: give them
        # --hold-wait seconds, as an operator reading the figures would
        if mine and r.get("extended", 0) > r.get("gate", {}).get("extensions", 0):
            held_since = held_since or time.time()
            if time.time() - held_since > args.hold_wait:
                return _outcome(r, target, "held", started)
        time.sleep(1)
    return Outcome("", target, "timeout", args.timeout, 0, current(state).get("reason", ""))


def _outcome(r: dict[str, Any], target: str, phase: str, started: float) -> Outcome:
    looks = sum(1 for e in r["history"] if (e.get("signals") or {}).get("gate"))
    return Outcome("", target, phase, time.time() - started, looks, r["reason"])


def restore(platform: Path, state: Path) -> None:
    """End a held rollout, or put a completed degraded version back behind a stable one."""
    r = current(state)
    if r.get("phase") in ("launching", "shifting"):
        xpool("rollout", "abort", str(platform), "embedding", "--state-dir", str(state))
    if current(state).get("phase") == "completed" and current(state).get("canary") == DEGRADED:
        xpool(
            "rollout", "start", str(platform), "embedding", "--to", "1", "--state-dir", str(state)
        )
        while current(state).get("phase") == "launching":
            time.sleep(1)
        xpool("rollout", "promote", str(platform), "embedding", "--state-dir", str(state))


def serving(state: Path) -> str:
    r = current(state)
    if not r:
        return "1"
    return r["canary"] if r["phase"] == "completed" else r["stable"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identical", type=int, default=10)
    parser.add_argument("--degraded", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds added (degraded)")
    parser.add_argument("--errors", type=float, default=0.05, help="share failed (degraded)")
    parser.add_argument("--steps", default="50,100")
    parser.add_argument("--interval", default="30s")
    parser.add_argument("--clients", type=int, default=3, help="steady clients (x2 in bursts)")
    parser.add_argument("--hold-wait", type=float, default=120, help="seconds watched once held")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per rollout")
    parser.add_argument("--no-burner", action="store_true")
    args = parser.parse_args()

    plan = ["identical"] * args.identical
    kinds = ["latency", "errors"]
    plan += [kinds[i % 2] for i in range(args.degraded)]
    random.Random(5).shuffle(plan)

    with tempfile.TemporaryDirectory(prefix="xpool-bench-rollout-") as tmp_name:
        tmp = Path(tmp_name)
        xinference = EmbeddedXinference(tmp / "xinference")
        upstream = xinference.start(lambda line: print(line, file=sys.stderr))
        faults = Faults()
        proxy_port = free_port()
        proxy = serve_in_thread(fault_proxy(upstream, faults), proxy_port)
        gateway_port = free_port()
        platform = platform_file(tmp, f"http://127.0.0.1:{proxy_port}", gateway_port)
        state = tmp / "state"
        burner = None
        outcomes: list[Outcome] = []
        try:
            with running_up(platform, state, cwd=ROOT):
                log = (tmp / "reconcile.log").open("w")
                reconciler = subprocess.Popen(
                    [sys.executable, "-m", "xpool.cli", "reconcile", str(platform), "--loop",
                     "--interval", "2s", "--state-dir", str(state)],
                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
                clients = Clients(f"http://127.0.0.1:{gateway_port}", args.clients).start()
                burner = None if args.no_burner else Burner()
                try:
                    time.sleep(10)  # the stable version's instance warms up
                    for kind in plan:
                        faults.latency = args.latency if kind == "latency" else 0.0
                        faults.errors = args.errors if kind == "errors" else 0.0
                        if kind == "identical":
                            target = "2" if serving(state) == "1" else "1"
                        else:
                            target = DEGRADED
                        o = run_rollout(platform, state, target, args)
                        o.kind = kind
                        outcomes.append(o)
                        print(
                            f"{len(outcomes):>3} {kind:<9} -> {o.target}: {o.phase:<11} "
                            f"{o.seconds:6.1f} s, {o.steps} end-of-step look(s): {o.reason[:160]}",
                            flush=True,
                        )
                        restore(platform, state)
                        faults.latency = faults.errors = 0.0
                        time.sleep(3)
                finally:
                    clients.stop.set()
                    reconciler.terminate()
                    reconciler.wait(30)
                    log.close()
        finally:
            if burner is not None:
                burner.close()
            proxy.should_exit = True
            xinference.stop()
        report(outcomes, clients)


def report(outcomes: list[Outcome], clients: Clients) -> None:
    same = [o for o in outcomes if o.kind == "identical"]
    bad = [o for o in outcomes if o.kind != "identical"]
    false = [o for o in same if o.phase != "completed"]
    missed = [o for o in bad if o.phase not in ("rolled-back",)]
    print()
    print(f"identical versions: {len(same)}, rolled back or held: {len(false)}", end="")
    print(f" (false-rollback rate {len(false) / max(1, len(same)):.0%}; goal 0%)")
    print(f"degraded versions:  {len(bad)}, not rolled back: {len(missed)}", end="")
    print(f" (missed-regression rate {len(missed) / max(1, len(bad)):.0%}; goal 0%)")
    for kind in ("identical", "latency", "errors"):
        mine = [o for o in outcomes if o.kind == kind]
        if mine:
            print(
                f"  {kind:<9} median time to decision {statistics.median(o.seconds for o in mine):.0f} s"
                f", end-of-step looks: {sorted(o.steps for o in mine)}"
            )
    print(f"client requests: {clients.sent}, failed: {clients.failed}")


if __name__ == "__main__":
    main()
