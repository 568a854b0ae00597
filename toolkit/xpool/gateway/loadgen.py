"""A steady-concurrency load generator for the gateway's benchmarks and tests, and a way to
run `xpool up` beside it.

`concurrency` threads share `total` requests; each thread sends one request at a time, so the
number in flight stays at `concurrency` until the budget runs out. Every non-2xx answer and
every transport error is a failure; a stream that did not end with `data: [DONE]` is
incomplete. Bodies alternate between the given request makers.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


@contextmanager
def running_up(
    platform: Path, state: Path, *, stderr: int = subprocess.DEVNULL, cwd: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`xpool up PLATFORM` as a subprocess, yielded once it serves (its first stdout line);
    stopped with SIGTERM afterwards unless the caller already stopped it (killed after 120 s).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "xpool.cli", "up", str(platform), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=cwd,
    )
    try:
        first = proc.stdout.readline() if proc.stdout else ""  # blocks until all is ready
        if "is serving on" not in first:
            proc.wait(timeout=60)
            tail = proc.stderr.read()[-3000:] if proc.stderr else ""
            raise RuntimeError(f"xpool up did not start: {first}{tail}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()


# (path, body, stream?)
RequestMaker = Callable[[int], tuple[str, dict[str, Any], bool]]


def embedding_request(model: str) -> RequestMaker:
    return lambda i: ("/v1/embeddings", {"model": model, "input": f"request {i}"}, False)


def chat_stream_request(model: str, max_tokens: int = 8) -> RequestMaker:
    return lambda i: (
        "/v1/chat/completions",
        {
            "model": model,
            "messages": [{"role": "user", "content": f"hello {i}"}],
            "max_tokens": max_tokens,
            "stream": True,
        },
        True,
    )


@dataclass
class LoadResult:
    total: int = 0
    ok: int = 0
    failed: int = 0
    incomplete_streams: int = 0
    streams: int = 0
    seconds: float = 0.0
    errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def line(self) -> str:
        top = "; ".join(f"{k} x{v}" for k, v in self.errors.most_common(3))
        return (
            f"total {self.total}, ok {self.ok}, failed {self.failed}, streams {self.streams}, "
            f"incomplete streams {self.incomplete_streams}, {self.seconds:.1f} s"
            + (f" (errors: {top})" if top else "")
        )


class Load:
    """Run in the background with start(); join() waits for the budget to be spent."""

    def __init__(
        self,
        base_url: str,
        makers: list[RequestMaker],
        *,
        total: int,
        concurrency: int,
        timeout: float = 120.0,
        headers: dict[str, str] | None = None,
        pause: float = 0.0,
    ) -> None:
        self.base_url = base_url
        self.pause = pause  # seconds each worker waits between requests (paced load)
        self.makers = makers
        self.total = total
        self.concurrency = concurrency
        self.timeout = timeout
        self.headers = headers or {}
        self.result = LoadResult()
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._started = 0.0

    def done_count(self) -> int:
        with self._lock:
            return self.result.total

    def start(self) -> Load:
        self._started = time.monotonic()
        for n in range(self.concurrency):
            t = threading.Thread(target=self._worker, name=f"load-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> LoadResult:
        for t in self._threads:
            t.join(timeout)
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def _worker(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self.timeout, headers=self.headers) as c:
            while not self._stop.is_set():
                i = next(self._counter)
                if i >= self.total:
                    return
                path, body, stream = self.makers[i % len(self.makers)](i)
                started = time.perf_counter()
                ok, complete, err = self._one(c, path, body, stream)
                elapsed = time.perf_counter() - started
                with self._lock:
                    r = self.result
                    r.total += 1
                    r.streams += stream
                    if ok:
                        r.ok += 1
                        r.latencies.append(elapsed)
                    else:
                        r.failed += 1
                        r.errors[err] += 1
                    if stream and not complete:
                        r.incomplete_streams += 1
                if self.pause:
                    self._stop.wait(self.pause)

    @staticmethod
    def _one(
        c: httpx.Client, path: str, body: dict[str, Any], stream: bool
    ) -> tuple[bool, bool, str]:
        try:
            if not stream:
                r = c.post(path, json=body)
                if r.status_code != 200:
                    return False, False, f"HTTP {r.status_code} {r.text[:120]}"
                return True, True, ""
            with c.stream("POST", path, json=body) as r:
                if r.status_code != 200:
                    r.read()
                    return False, False, f"HTTP {r.status_code} {r.text[:120]}"
                last = ""
                for line in r.iter_lines():
                    if line.strip():
                        last = line.strip()
                complete = last == "data: [DONE]"
                return True, complete, "" if complete else "incomplete stream"
        except httpx.HTTPError as exc:
            return False, False, f"{type(exc).__name__}: {str(exc)[:120]}"
