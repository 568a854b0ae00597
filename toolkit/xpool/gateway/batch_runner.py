"""The Batch API's runner: an asyncio task of the gateway that runs batches in idle capacity.

Each active batch is a job: the lines still to run (its input minus the lines of its parts,
`gateway/batch_book.py`), the requests in flight, and finished lines not yet in a part. Lines
go out only as the routing table has room for batch requests (`RoutingTable.batch_room`: a
reserve kept for interactive requests, none while they are refused), through the same
`Proxy.send` as interactive requests (retries before the first byte included). A line comes
back to the queue, never into the error file, when the table refused it, when an
interactive request preempted it, or when it got a 429/5xx (an instance drained, preempted or
gone), up to ROUNDS times. Finished lines are committed PART_LINES at a time, or every
PART_SECONDS: a runner killed in between runs the uncommitted lines again, and nothing twice
ends up in the output.

One runner owns the batches of a store: on Kubernetes the gateway StatefulSet's first pod
runs them, every replica serves the API on the shared S3 store (docs/gateway.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.responses import Response

from xpool.batch.backlog import line_tokens
from xpool.batch.lines import (
    BadLine,
    Line,
    error_line,
    jsonl,
    output_line,
    parse_lines,
    succeeded,
)
from xpool.batch.objects import ACTIVE, MOVES, file_object, moved
from xpool.errors import XpoolError
from xpool.gateway.batch_book import BatchBook, new_id
from xpool.gateway.proxy import Proxy, is_gone
from xpool.gateway.responses import error
from xpool.gateway.routing import Refusal, RoutingTable
from xpool.logs import get_logger

log = get_logger(__name__)

PART_LINES = 100  # finished lines per committed part
PART_SECONDS = 2.0  # and at least this often while lines finish
TICK = 0.05  # seconds between dispatch rounds while lines wait
# How often the store is read for batches created through another gateway replica (this
# process's own creations are read at once).
RELIST_SECONDS = 10.0
ROUNDS = 5  # a line answered 429/5xx this many times goes to the error file with its answer
PAUSE = 0.5  # seconds a job sends nothing after a line came back (no busy loop on a fault)


class _Ticket:
    """A batch request in flight; `preempt` (the routing table, under its lock) cancels it."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.preempted = False
        self._loop = asyncio.get_running_loop()

    def preempt(self) -> None:
        self.preempted = True
        if self.task is not None:
            self._loop.call_soon_threadsafe(self.task.cancel)


@dataclass
class Job:
    batch: dict[str, Any]
    queue: deque[Line]
    bad: list[BadLine]
    order: dict[str, int]  # custom_id -> line number: output files follow the input's order
    parts: int  # parts committed
    ok: int  # committed lines for the output file
    failed: int  # committed lines for the error file (lines that could not run aside)
    pending: list[dict[str, Any]] = field(default_factory=list)  # finished, not committed
    running: dict[asyncio.Task[None], Line] = field(default_factory=dict)
    rounds: Counter[str] = field(default_factory=Counter)
    committed_at: float = field(default_factory=time.monotonic)
    tokens: dict[str, int] = field(default_factory=dict)  # custom_id -> estimate, once
    paused_until: float = 0.0  # time.monotonic()

    @property
    def model(self) -> str:
        return self.batch["model"] or ""

    def backlog(self) -> tuple[int, int]:
        """Lines not finished (queued or in flight) and their estimated tokens."""
        lines = [*self.queue, *self.running.values()]
        return len(lines), sum(self.tokens.get(line.custom_id, 0) for line in lines)


class BatchRunner:
    def __init__(
        self, book: BatchBook, proxy: Proxy, table: RoutingTable, clock: Callable[[], float]
    ) -> None:
        self.book = book
        self.proxy = proxy
        self.table = table
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self.lock = asyncio.Lock()  # batch objects: read, moved and written under it
        self._wake = asyncio.Event()
        self._fresh = True  # the store may hold batches without a job: read it (at start)
        self._stopping = False

    def now(self) -> int:
        return int(self.clock())

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """End `run` after its current round (the app's shutdown). A flag, not a task
        cancellation: Python 3.11's `asyncio.wait_for` can swallow one."""
        self._stopping = True
        self.wake()

    def created(self) -> None:
        """A batch was stored (the API's create): load it on the next round."""
        self._fresh = True
        self.wake()

    def backlog(self) -> dict[str, tuple[int, int]]:
        """Per model: batch lines not finished and their estimated tokens."""
        out: dict[str, tuple[int, int]] = {}
        for job in list(self.jobs.values()):
            lines, tokens = job.backlog()
            before = out.get(job.model, (0, 0))
            out[job.model] = (before[0] + lines, before[1] + tokens)
        return out

    async def run(self) -> None:
        """Resume the stored active batches, then run until `stop` (the app's shutdown:
        requests in flight are cancelled, finished lines committed)."""
        listed = time.monotonic()
        try:
            while not self._stopping:
                if self._fresh or time.monotonic() - listed >= RELIST_SECONDS:
                    self._fresh, listed = False, time.monotonic()
                    await self._load_new()
                for job in list(self.jobs.values()):
                    try:
                        await self._step(job)
                    except (OSError, XpoolError) as exc:  # the store: tried again next round
                        log.warning(f"batch {job.batch['id']}: {exc}")
                        await asyncio.sleep(1.0)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK if self.jobs else 1.0):
                        await self._wake.wait()
        finally:
            with anyio.CancelScope(shield=True):
                await self._stop()

    async def _stop(self) -> None:
        """Stop the requests in flight and commit what finished (what cannot be committed
        now runs again after the restart)."""
        for job in self.jobs.values():
            for task in job.running:
                task.cancel()
            await asyncio.gather(*job.running, return_exceptions=True)
            try:
                await self._commit(job)
            except (OSError, XpoolError) as exc:
                log.warning(f"batch {job.batch['id']}: {exc}")

    # -- jobs ----------------------------------------------------------------------------------

    async def _load_new(self) -> None:
        """Jobs for stored batches that are active and not loaded yet (all at start)."""
        ids = await anyio.to_thread.run_sync(self.book.batch_ids)
        for batch_id in reversed(ids):  # oldest first
            if batch_id in self.jobs:
                continue
            batch = await anyio.to_thread.run_sync(self.book.batch, batch_id)
            if batch is not None and batch["status"] in ACTIVE:
                self.jobs[batch_id] = await anyio.to_thread.run_sync(self._job, batch)

    def _job(self, batch: dict[str, Any]) -> Job:
        """A batch's job: its input's lines less those its parts finished (blocking I/O)."""
        data = self.book.content(batch["input_file_id"]) or b""
        good, bad = parse_lines(data, batch["endpoint"])
        parts, finished = self.book.parts(batch["id"])
        done = {line["custom_id"] for line in finished}
        ok = sum(1 for line in finished if succeeded(line))
        order = {line.custom_id: line.number for line in good}
        queue = deque(line for line in good if line.custom_id not in done)
        tokens = {line.custom_id: line_tokens(batch["endpoint"], line.body) for line in queue}
        return Job(batch, queue, bad, order, parts, ok, len(finished) - ok, tokens=tokens)

    async def _step(self, job: Job) -> None:
        status = job.batch["status"]
        if status == "validating":
            await self._move(job, "in_progress")
        elif self.clock() >= job.batch["expires_at"] and status in ("in_progress", "cancelling"):
            await self._expire(job)
            return
        if job.batch["status"] == "in_progress":
            self._dispatch(job)
        if time.monotonic() - job.committed_at >= PART_SECONDS or len(job.pending) >= PART_LINES:
            await self._commit(job)
        if job.running:
            return
        if job.batch["status"] == "cancelling":
            await self._finish(job, "cancelled", [])
        elif job.batch["status"] == "finalizing" or (
            job.batch["status"] == "in_progress"
            and not job.queue
            and await self._move(job, "finalizing")
        ):  # a runner stopped while it finalized
            await self._finish(job, "completed", [])

    async def _move(self, job: Job, status: str) -> bool:
        """Move the stored batch to `status`; False when a cancel moved it first."""
        async with self.lock:
            job.batch = (
                await anyio.to_thread.run_sync(self.book.batch, job.batch["id"]) or job.batch
            )
            if status not in MOVES.get(job.batch["status"], ()):
                return False
            job.batch = moved(job.batch, status, self.now())
            await anyio.to_thread.run_sync(self.book.put_batch, job.batch)
            return True

    async def cancel(self, batch_id: str) -> dict[str, Any] | None:
        """Move a batch to cancelling (the API's cancel); None when it is not known."""
        async with self.lock:
            batch = await anyio.to_thread.run_sync(self.book.batch, batch_id)
            if batch is None or batch["status"] not in ("validating", "in_progress"):
                return batch
            batch = moved(batch, "cancelling", self.now())
            await anyio.to_thread.run_sync(self.book.put_batch, batch)
            if batch_id in self.jobs:
                self.jobs[batch_id].batch = batch
        self.wake()
        return batch

    async def _expire(self, job: Job) -> None:
        """The completion window ran out: the lines in flight are stopped, and every line not
        finished goes to the error file as `batch_expired`."""
        running = dict(job.running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        stopped = [line for task, line in running.items() if task.cancelled()]
        batch_id = job.batch["id"]
        message = "the batch's completion window ran out before this request ran"
        left = [
            error_line(batch_id, line.custom_id, "batch_expired", message)
            for line in sorted([*job.queue, *stopped], key=lambda line: line.number)
        ]
        job.queue.clear()
        await self._finish(job, "expired", left)

    # -- lines ---------------------------------------------------------------------------------

    def _dispatch(self, job: Job) -> None:
        if time.monotonic() < job.paused_until:
            return
        room = self.table.batch_room(job.model)
        while job.queue and room > 0:
            line = job.queue.popleft()
            ticket = _Ticket()
            task = asyncio.create_task(self._run(job, line, ticket))
            ticket.task = task
            job.running[task] = line
            task.add_done_callback(lambda t, job=job: self._done(job, t))
            room -= 1

    def _done(self, job: Job, task: asyncio.Task[None]) -> None:
        job.running.pop(task, None)
        self.wake()

    async def _run(self, job: Job, line: Line, ticket: _Ticket) -> None:
        body = {k: v for k, v in line.body.items() if k not in ("stream", "stream_options")}
        try:
            outcome = await self.proxy.send(
                job.batch["endpoint"], body, time.perf_counter(), ticket=ticket
            )
        except asyncio.CancelledError:
            if ticket.preempted:
                job.queue.appendleft(line)
                return
            raise
        except Exception as exc:  # a bug or an unforeseen failure: the line is not lost
            log.warning(f"batch {job.batch['id']}, line {line.number}: {exc!r}")
            outcome = error(500, f"the gateway failed to send the request: {exc}", "server_error")
        if self._again(job, line, outcome):
            job.queue.appendleft(line)
            return
        assert isinstance(outcome, Response)
        job.pending.append(self._output(job, line, outcome))

    def _again(self, job: Job, line: Line, outcome: Response | Refusal) -> bool:
        """Whether the line goes back to the queue: refused by the table, sent only to
        instances gone (Xinference's "model not found": a drained or preempted instance not
        yet out of the table), or answered 429/5xx while rounds are left."""
        status = outcome.status if isinstance(outcome, Refusal) else outcome.status_code
        again = isinstance(outcome, Refusal) or is_gone(status, bytes(outcome.body))
        if not again and (status == 429 or status >= 500):
            job.rounds[line.custom_id] += 1
            again = job.rounds[line.custom_id] < ROUNDS
        if again:
            job.paused_until = time.monotonic() + PAUSE
        return again

    def _output(self, job: Job, line: Line, response: Response) -> dict[str, Any]:
        try:
            body: Any = json.loads(bytes(response.body))
        except ValueError:
            body = bytes(response.body).decode(errors="replace")
        request = response.headers.get("x-request-id") or new_id("req_")
        return output_line(job.batch["id"], line.custom_id, response.status_code, request, body)

    # -- commits -------------------------------------------------------------------------------

    async def _commit(self, job: Job) -> None:
        """Write the finished lines not committed yet as the job's next part."""
        job.committed_at = time.monotonic()
        if not job.pending:
            return
        lines = list(job.pending)  # lines may finish meanwhile: they stay for the next part
        await anyio.to_thread.run_sync(self.book.put_part, job.batch["id"], job.parts, lines)
        del job.pending[: len(lines)]
        job.parts += 1
        ok = sum(1 for line in lines if succeeded(line))
        job.ok, job.failed = job.ok + ok, job.failed + len(lines) - ok
        await self._count(job)

    async def _count(self, job: Job) -> None:
        counts = {
            "total": job.batch["request_counts"]["total"],
            "completed": job.ok,
            "failed": job.failed + len(job.bad),
        }
        async with self.lock:
            stored = await anyio.to_thread.run_sync(self.book.batch, job.batch["id"]) or job.batch
            job.batch = {**stored, "request_counts": counts}
            await anyio.to_thread.run_sync(self.book.put_batch, job.batch)

    async def _finish(self, job: Job, status: str, left: list[dict[str, Any]]) -> None:
        """Commit, write the output and error files (ids derived from the batch's, so a
        runner that stops here and resumes writes the same ones), then the final status."""
        await self._commit(job)
        batch_id = job.batch["id"]
        bad = [error_line(batch_id, b.custom_id, "invalid_request", b.message) for b in job.bad]
        _, finished = await anyio.to_thread.run_sync(self.book.parts, batch_id)
        ranked = sorted(finished, key=lambda line: job.order.get(line["custom_id"], 0))
        output = [line for line in ranked if succeeded(line)]
        errors = bad + [line for line in ranked if not succeeded(line)] + left
        ids = {}
        for kind, lines in (("output", output), ("error", errors)):
            if lines:
                file_id = f"file-{batch_id.removeprefix('batch_')}{kind}"
                content = jsonl(lines)
                meta = file_object(
                    file_id,
                    filename=f"{batch_id}_{kind}.jsonl",
                    size=len(content),
                    purpose="batch_output",
                    now=self.now(),
                )
                await anyio.to_thread.run_sync(self.book.put_file, meta, content)
                ids[f"{kind}_file_id"] = file_id
        counts = {
            "total": job.batch["request_counts"]["total"],
            "completed": len(output),
            "failed": len(errors),
        }
        async with self.lock:
            stored = await anyio.to_thread.run_sync(self.book.batch, batch_id) or job.batch
            final = moved({**stored, **ids, "request_counts": counts}, status, self.now())
            await anyio.to_thread.run_sync(self.book.put_batch, final)
        del self.jobs[batch_id]
