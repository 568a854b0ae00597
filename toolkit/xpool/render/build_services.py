"""Workloads and Services: the Xinference supervisor (a Deployment) and the xpool gateway (a
StatefulSet: its pods' names are fixed, so its Role can name the report Leases they write)."""

from __future__ import annotations

import math

from xpool.render.build_context import BuildContext
from xpool.render.items import Built
from xpool.render.object_names import (
    GATEWAY,
    GATEWAY_REPLICAS,
    SUPERVISOR,
    SUPERVISOR_PORT,
)

ORDER = 5  # after the ConfigMaps they mount, before the workers that register with them
SUPERVISOR_RPC_PORT = 9999
GATEWAY_STOP_SECONDS = 30  # after its requests: stop the server, delete the Lease, exit


def build_services(ctx: BuildContext, out: Built) -> None:
    _supervisor(ctx, out)
    _gateway(ctx, out)


def _supervisor(ctx: BuildContext, out: Built) -> None:
    supervisor_labels = ctx.labels(SUPERVISOR)
    ports = [
        {"name": "http", "port": SUPERVISOR_PORT},
        {"name": "rpc", "port": SUPERVISOR_RPC_PORT},
    ]
    out.add(
        ORDER,
        "Deployment",
        "workload.yaml.j2",
        workload_kind="Deployment",
        name=SUPERVISOR,
        namespace=ctx.namespace,
        labels=supervisor_labels,
        selector=ctx.selector(SUPERVISOR),
        comment="The Xinference supervisor: model registry and launch API; no accelerator.",
        replicas=1,
        container="supervisor",
        image=ctx.spec.images.xinference.supervisor,
        command=[
            "xinference-supervisor",
            "-H",
            "0.0.0.0",
            "--port",
            str(SUPERVISOR_PORT),
            "--supervisor-port",
            str(SUPERVISOR_RPC_PORT),
        ],
        env=[{"name": "XINFERENCE_HOME", "value": "/data"}],
        ports=ports,
        resources={
            "requests": {"cpu": "2", "memory": "4Gi"},
            "limits": {"memory": "8Gi"},
        },
        mounts=[{"name": "data", "mountPath": "/data"}],
        volumes=[{"name": "data", "emptyDir": {}}],
        service_account=None,
        termination_grace=None,
    )
    out.add(
        ORDER,
        "Service",
        "service.yaml.j2",
        name=SUPERVISOR,
        namespace=ctx.namespace,
        labels=supervisor_labels,
        selector=ctx.selector(SUPERVISOR),
        ports=ports,
    )


def _gateway(ctx: BuildContext, out: Built) -> None:
    spec = ctx.spec
    gateway_port = int(spec.gateway.listen.rsplit(":", 1)[1])
    gateway_labels = ctx.labels(GATEWAY)
    out.add(
        ORDER,
        "StatefulSet",
        "workload.yaml.j2",
        workload_kind="StatefulSet",
        name=GATEWAY,
        namespace=ctx.namespace,
        labels=gateway_labels,
        selector=ctx.selector(GATEWAY),
        comment=(
            "The xpool gateway: routes, drains and canaries requests; each replica reports in "
            "Lease xpool-gateway-<pod>, a name its Role grants. Pods are started and replaced "
            "in parallel; an update replaces one at a time."
        ),
        replicas=GATEWAY_REPLICAS,
        container="gateway",
        image=spec.images.xpool,
        command=[
            "xpool",
            "gateway",
            ctx.platform_path,
            "--listen",
            f"0.0.0.0:{gateway_port}",
            "--log-format",
            "json",
        ],
        env=[
            # the replica id (`--replica` default): the pod name, unique among the replicas
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            *ctx.secret_env,
            *ctx.client_keys_env,
            *ctx.batch_store_env,
        ],
        ports=[{"name": "http", "port": gateway_port}],
        resources={"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        mounts=ctx.config_mount,
        volumes=ctx.config_volume,
        service_account=GATEWAY,
        # on SIGTERM a replica finishes its requests (each ends within requestTimeout), then
        # withdraws its Lease: give it that long before the kubelet kills it
        termination_grace=math.ceil(spec.gateway.request_timeout) + GATEWAY_STOP_SECONDS,
    )
    out.add(
        ORDER,
        "Service",
        "service.yaml.j2",
        name=GATEWAY,
        namespace=ctx.namespace,
        labels=gateway_labels,
        selector=ctx.selector(GATEWAY),
        ports=[{"name": "http", "port": gateway_port}],
    )
