"""The local `xpool up` as an instance target, through its gateway's loopback admin API.

The gateway owns the routing table and the drain, so a one-shot pass only asks for changes
(launch, drain, terminate) and reads state back on the next pass; nothing here waits for a
model to load or a stream to finish.

A multi-worker `xpool up` (local/cluster.py) also has workers: the supervisor's list joined
with the bookkeeping of what each stands for (read from its admin API every pass, since its
worker groups scale), and each instance's worker read from Xinference (or, while its launch has
not reached Xinference yet, the worker the gateway was asked for). Its worker groups scale
through the admin API too; a scale-up no node has room for is pending, retried next pass.
"""

from __future__ import annotations

from typing import Any

from xpool.adapters.xinference import Worker, XinferenceClient
from xpool.config.models import Platform
from xpool.errors import InputError, RemoteError
from xpool.local.admin import AdminClient
from xpool.local.cluster import LocalWorker, gpu_idx, worker_obs
from xpool.logs import get_logger
from xpool.policy.actions import Drain, Launch, ScaleWorkers, Terminate
from xpool.policy.state import InstanceObs, WorkerObs

log = get_logger(__name__)


class LocalTarget:
    def __init__(
        self,
        admin: AdminClient,
        xinference: XinferenceClient | None = None,
        platform: Platform | None = None,
    ) -> None:
        """`xinference` and `platform` only for a multi-worker `xpool up`; without them no
        worker is observed, launches name none and worker groups are left alone."""
        self.admin = admin
        self.xinference = xinference
        self.platform = platform

    def close(self) -> None:
        self.admin.close()
        if self.xinference is not None:
            self.xinference.close()

    def _listed(self) -> list[Worker]:
        return self.xinference.workers() if self.xinference else []

    def _groups(self) -> dict[str, Any]:
        return self._call("/-/admin/workers") if self.xinference else {}

    def workers(self) -> list[WorkerObs]:
        """The groups' members the supervisor lists (a stopping worker is no member)."""
        if self.xinference is None:
            return []
        members = [
            LocalWorker.of(w)
            for w in self._groups().get("workers", [])
            if w.get("state") == "member"
        ]
        return worker_obs(members, [w.address for w in self._listed()])

    def _call(
        self, path: str, body: dict[str, Any] | None = None, *, conflict_ok: bool = True
    ) -> dict[str, Any]:
        """A refused request is a failed action, not bad input to this command: the pass
        records it and goes on with the other actions (and the next pass retries)."""
        try:
            method = "POST" if body is not None else "GET"
            return self.admin.call(method, path, body, conflict_ok=conflict_ok)
        except InputError as exc:
            messages = "; ".join(problem.message for problem in exc.problems)
            raise RemoteError(f"gateway {path}: {messages}") from None

    def instances(self) -> list[InstanceObs]:
        data = self._call("/-/admin/instances")
        where = {uid: (w.address, d) for w in self._listed() for uid, d in w.instances.items()}
        return [
            InstanceObs(
                uid=str(i["uid"]),
                model=str(i["model"]),
                version=str(i.get("version", "")),
                state=i.get("state", "draining" if i.get("draining") else "ready"),
                since=float(i.get("since") or 0.0),
                inflight=int(i.get("inflight", 0)),
                error=i.get("error"),
                worker=where.get(str(i["uid"]), (i.get("worker"), ()))[0],
                devices=where.get(str(i["uid"]), (None, ()))[1],
            )
            for i in data.get("instances", [])
        ]

    def worker_replicas(self) -> dict[tuple[str, str], int]:
        return {
            (str(g["job"]), str(g["task"])): int(g["replicas"])
            for g in self._groups().get("replicas", [])
        }

    def scale_workers(self, action: ScaleWorkers) -> bool:
        """False while no node has room for a new worker (the reason is logged); a refused
        group or replicas is a failed action."""
        body = {"job": action.job, "task": action.task, "replicas": action.replicas}
        data = self._call("/-/admin/workers", body, conflict_ok=False)
        pending = data.get("pending")
        if pending:
            log.info(
                f"{action.job}/{action.task}: {data.get('replicas')} of {action.replicas} "
                f"replica(s), pending: {pending}",
                extra={"job": action.job, "task": action.task},
            )
        return not pending

    def launch(self, action: Launch) -> list[str]:
        body: dict[str, Any] = {
            "model": action.model,
            "version": action.version,
            "count": action.count,
        }
        if action.worker is not None:
            body["worker"] = action.worker
            if self.platform is not None:
                body["gpuIdx"] = gpu_idx(self.platform, action.pool, action.devices)
        return list(self._call("/-/admin/launch", body).get("uids", []))

    def drain(self, action: Drain) -> None:
        self._call("/-/admin/drain", {"uids": [action.uid]})

    def terminate(self, action: Terminate) -> bool:
        body = {"uids": [action.uid], "force": action.timed_out, "timedOut": action.timed_out}
        return action.uid in self._call("/-/admin/terminate", body).get("terminated", [])

    def set_weights(self, model: str, weights: dict[str, float]) -> None:
        self._call("/-/admin/weights", {"model": model, "weights": weights})
