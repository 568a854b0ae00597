"""Gateway overhead: added latency and throughput versus calling Xinference directly.

Runs `xpool up` on the quickstart (a subprocess: the gateway does not share the client's
interpreter), then alternates, `--rounds` times, between the gateway and the same Xinference
instance (`embedding--1--1`, same body, `model` set to the UID) for:
- latency: `--requests` sequential embedding requests from one keep-alive client (median);
- throughput: `--concurrency` clients sending `--requests` requests in total (requests/s).
Prints the medians over rounds, the added median latency and the throughput ratio. Goals
(reported, not asserted): <= 2 ms added at the median, >= 95 % of direct throughput.

    python bench/gateway.py --rounds 5 --requests 300 --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from xpool.gateway.loadgen import running_up
from xpool.local.runtime import free_port

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
UID = "embedding--1--1"


def latencies(base: str, model: str, n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, timeout=60) as c:
        c.post("/v1/embeddings", json={"model": model, "input": "warm up"}).raise_for_status()
        for i in range(n):
            t = time.perf_counter()
            r = c.post("/v1/embeddings", json={"model": model, "input": f"sentence {i % 7}"})
            out.append(time.perf_counter() - t)
            r.raise_for_status()
    return out


def throughput(base: str, model: str, n: int, concurrency: int) -> float:
    counter = iter(range(n))
    lock = threading.Lock()
    errors = []

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                r = c.post("/v1/embeddings", json={"model": model, "input": f"sentence {i % 7}"})
                if r.status_code != 200:
                    errors.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        print(f"warning: {len(errors)} errors ({errors[:3]})", file=sys.stderr)
    return n / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xpool-bench-") as tmp:
        port = free_port()
        platform = Path(tmp) / "platform.yaml"
        platform.write_text(QUICKSTART.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        state = Path(tmp) / "state"
        with running_up(platform, state):
            direct = json.loads((state / "up.json").read_text())["endpoint"]
            gateway = f"http://127.0.0.1:{port}"
            lat = {"gateway": [], "direct": []}
            tput = {"gateway": [], "direct": []}
            for r in range(args.rounds):
                order = [("gateway", gateway, "embedding"), ("direct", direct, UID)]
                if r % 2:
                    order.reverse()
                for name, base, model in order:
                    lat[name].append(statistics.median(latencies(base, model, args.requests)))
                for name, base, model in order:
                    tput[name].append(throughput(base, model, args.requests, args.concurrency))
    gl, dl = statistics.median(lat["gateway"]), statistics.median(lat["direct"])
    gt, dt = statistics.median(tput["gateway"]), statistics.median(tput["direct"])
    print(f"embedding requests, {args.rounds} rounds x {args.requests} requests, medians of rounds")
    print(
        f"latency   direct {dl * 1000:.2f} ms   gateway {gl * 1000:.2f} ms   "
        f"added {(gl - dl) * 1000:.2f} ms (goal <= 2 ms)"
    )
    print(
        f"throughput ({args.concurrency} clients)   direct {dt:.1f} req/s   gateway {gt:.1f} req/s"
        f"   ratio {gt / dt * 100:.1f} % (goal >= 95 %)"
    )


if __name__ == "__main__":
    main()
