"""The reconciler's CronJob: one `xpool reconcile --once` pass per schedule tick."""

from __future__ import annotations

from xpool.render.build_context import BuildContext
from xpool.render.items import Built
from xpool.render.object_names import RECONCILER, SERVICE_ACCOUNT

ORDER = 7  # last of the workloads: it acts on everything above


def build_reconciler(ctx: BuildContext, out: Built) -> None:
    out.add(
        ORDER,
        "CronJob",
        "cronjob.yaml.j2",
        name=RECONCILER,
        namespace=ctx.namespace,
        labels=ctx.labels(RECONCILER),
        schedule=ctx.kubernetes.reconcile_schedule,
        starting_deadline=30,
        active_deadline=50,
        service_account=SERVICE_ACCOUNT,
        image=ctx.spec.images.xpool,
        command=["xpool", "reconcile", ctx.platform_path, "--once", "--log-format", "json"],
        env=ctx.secret_env,
        resources={"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        mounts=ctx.config_mount,
        volumes=ctx.config_volume,
    )
