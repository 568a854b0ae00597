"""Builders: the values every template lays out, computed from the platform and its plan.

All arithmetic lives here (pure Python); templates only place values in YAML. The numbers are
the planner's: a tier's accelerators on a pool come from `tier_accelerators`, exactly what
`xpool plan` prints. See docs/scheduling.md for why each value is what it is.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

from xpool.capacity.shares import TierAccelerators, tier_accelerators
from xpool.config.models import Platform, Pool, Tier
from xpool.render.environment import policy_text, policy_yaml
from xpool.render.quantities import format_cpu, format_memory, memory_bytes

DEFAULT_RESOURCE = {"nvidia": "nvidia.com/gpu", "ascend": "huawei.com/Ascend910"}
ASCEND_IMAGE_FALLBACK = "xinference-ascend:v4.1.0"
SUPERVISOR = "xinference-supervisor"
SUPERVISOR_PORT = 9997
WORKER_METRICS_PORT = 9977
SERVICE_ACCOUNT = "xpool"
GATEWAY = "xpool-gateway"  # the gateway's Deployment, Service, ServiceAccount, Role and binding
ROUTES_CONFIGMAP = "xpool-routes"  # gateway/source.py; written by the reconciler
STATE_CONFIGMAP = "xpool-reconciler-state"  # reconcile/memory_store.py
ROLLOUTS_CONFIGMAP = "xpool-rollouts"  # reconcile/rollout_store.py
GATEWAY_STOP_SECONDS = 30  # after its requests: stop the server, delete the Lease, exit
PLATFORM_CONFIGMAP = "xpool-platform"
LAUNCH_CONFIGMAP = "xpool-launch-specs"
# Kubernetes refuses a ConfigMap over 1 MiB; keep each well below it (YAML quoting adds some).
LAUNCH_CONFIGMAP_BYTES = 768 * 1024
LEASE = "xpool-reconciler"
MOUNT = "/etc/xpool"
VOLCANO_NAMESPACE = "volcano-system"
VOLCANO_CONFIGMAP = "volcano-scheduler-configmap"


@dataclass(frozen=True)
class Item:
    """One object to render: its template, the values, and its apply-order group."""

    order: int
    kind: str
    name: str
    template: str
    values: dict[str, Any]
    volcano: bool = False


@dataclass
class Built:
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, order: int, kind: str, template: str, **values: Any) -> None:
        self.items.append(
            Item(
                order, kind, values["name"], template, values, kind in ("Queue", "Job", "PodGroup")
            )
        )


def slug(name: str) -> str:
    return name.lower()


def queue_name(platform: Platform, tier: Tier, pool: Pool) -> str:
    return f"{platform.metadata.name}-{slug(tier.name)}-{pool.name}"


def parent_queue_name(platform: Platform, pool: Pool) -> str:
    return f"{platform.metadata.name}-{pool.name}"


def job_name(tier: Tier, pool: Pool, burst: bool = False) -> str:
    return f"xinference-{slug(tier.name)}-{pool.name}" + ("-burst" if burst else "")


def resource_name(pool: Pool) -> str:
    return pool.resource_name or DEFAULT_RESOURCE[pool.vendor]


def node_selector(pool: Pool) -> dict[str, str]:
    return dict(pool.node_labels) if pool.node_labels else {"gpu-type": pool.vendor}


def pool_resources(pool: Pool, accelerators: int) -> dict[str, int | str]:
    """`accelerators` of `pool` with the matching share of its nodes' CPU and memory."""
    per_node = pool.accelerators_per_node
    millicores = accelerators * pool.cpu_per_node * 1000 // per_node
    memory = accelerators * memory_bytes(pool.memory_per_node) // per_node
    return {
        resource_name(pool): accelerators,
        "cpu": format_cpu(millicores),
        "memory": format_memory(memory),
    }


def worker_sizes(accelerators: int, per_node: int) -> list[tuple[int, int]]:
    """(accelerators per worker, workers): whole nodes first, then the remainder split into
    powers of two, largest first. With a power-of-two `per_node`, workers of power-of-two
    sizes whose total fits the pool always pack onto its nodes, so the tiers' worker groups
    fit together (6/5/5 of 2 x 8 becomes 4+2, 4+1, 4+1, not 6, 5, 5 which cannot pack)."""
    out = [(per_node, accelerators // per_node)] if accelerators >= per_node else []
    rest = accelerators % per_node
    size = 1 << max(0, per_node.bit_length() - 1)
    while rest:
        if size <= rest:
            out.append((size, 1))
            rest -= size
        size >>= 1
    return out


def reclaimable(tier: Tier) -> bool:
    """A queue may give resources back unless its tier neither yields nor borrows (P0).

    A borrowing tier must stay reclaimable: Volcano's reclaim never takes from a
    non-reclaimable queue, so what it borrowed could never return to the lender. The capacity
    plugin reclaims only what a queue holds above its `deserved`, and only from preemptable
    pods, so a non-preemptible borrowing tier (P1) keeps its own share.
    """
    return tier.preemptible or tier.borrow


def comment_lines(text: str) -> list[str]:
    """`text` as the lines of a YAML comment."""
    return textwrap.wrap(text, 94, break_on_hyphens=False)


def rbac_rule(
    comment: str, api_group: str, resource: str, verbs: list[str], names: list[str] | None = None
) -> dict[str, Any]:
    """One Role rule, with the comment that says why it is needed (wrapped for the YAML)."""
    return {
        "comment": comment_lines(comment),
        "api_group": api_group,
        "resource": resource,
        "names": names or [],
        "verbs": verbs,
    }


def reconciler_rules(configmaps: list[str]) -> list[dict[str, Any]]:
    """Everything `xpool reconcile` touches in the platform namespace, and nothing else."""
    return [
        rbac_rule(
            "Worker groups: observe them and scale a tier's workers (tasks[*].replicas is the "
            "only field Volcano lets a Job update besides minAvailable and priorityClassName).",
            "batch.volcano.sh",
            "jobs",
            ["get", "list", "watch", "patch"],
        ),
        rbac_rule(
            "PodGroups: read-only, to see whether a worker group is Pending/Inqueue/Running.",
            "scheduling.volcano.sh",
            "podgroups",
            ["get", "list", "watch"],
        ),
        rbac_rule(
            "Worker pods: which workers run where, and which were evicted or preempted.",
            "",
            "pods",
            ["get", "list", "watch"],
        ),
        rbac_rule(
            "xpool's own ConfigMaps only (the platform file and the launch specs), by name.",
            "",
            "configmaps",
            ["get", "patch", "update"],
            configmaps,
        ),
        rbac_rule(
            f"The routes every gateway follows ({ROUTES_CONFIGMAP}), the reconciler's memory "
            f"({STATE_CONFIGMAP}) and the rollouts ({ROLLOUTS_CONFIGMAP}), by name: read, and "
            "written by server-side apply, which "
            "creates them when absent. The API server authorizes that creation as `create` of "
            "the name in the request's URL (apiserver endpoints/handlers/patch.go), so unlike "
            "a POST it is restricted by resourceNames.",
            "",
            "configmaps",
            ["get", "patch", "create"],
            [ROUTES_CONFIGMAP, STATE_CONFIGMAP, ROLLOUTS_CONFIGMAP],
        ),
        rbac_rule(
            "The reconciler's leader lease: it is created by POST, whose name RBAC cannot see, "
            "so create is granted alone; reading and renewing is restricted to the lease xpool "
            "holds.",
            "coordination.k8s.io",
            "leases",
            ["create"],
        ),
        rbac_rule(
            "",
            "coordination.k8s.io",
            "leases",
            ["get", "update"],
            [LEASE],
        ),
        rbac_rule(
            "The gateway replicas' drain reports (Leases xpool-gateway-<pod>, selected by "
            "label): list cannot be restricted by name or label, so this reads every Lease of "
            "the namespace; it changes none.",
            "coordination.k8s.io",
            "leases",
            ["list"],
        ),
    ]


def gateway_rules() -> list[dict[str, Any]]:
    """What `xpool gateway` needs: its routes and its own report Lease."""
    return [
        rbac_rule(
            "The routes the reconciler writes, read-only, by name.",
            "",
            "configmaps",
            ["get"],
            [ROUTES_CONFIGMAP],
        ),
        rbac_rule(
            "This replica's drain report, the Lease xpool-gateway-<pod name>: created and "
            "renewed by server-side apply (patch; create when absent), deleted when the "
            "replica stops. Its name holds the pod name, unknown when this Role is written, so "
            "these verbs cannot be restricted by name and reach every Lease of the namespace: "
            "keep the namespace for xpool alone. The gateway never reads Leases (no get, list, "
            "update).",
            "coordination.k8s.io",
            "leases",
            ["create", "patch", "delete"],
        ),
    ]


def build(
    platform: Platform,
    platform_text: str,
    specs: list[dict[str, Any]],
) -> Built:
    spec = platform.spec
    assert spec.kubernetes is not None
    ns = spec.kubernetes.namespace
    part_of = platform.metadata.name
    out = Built()

    def labels(component: str, **extra: str) -> dict[str, str]:
        base = {
            "app.kubernetes.io/name": component,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": part_of,
            "app.kubernetes.io/managed-by": "xpool",
        }
        base.update({f"xpool.io/{k}": v for k, v in extra.items()})
        return base

    def selector(component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": part_of}

    tiers = sorted(spec.tiers, key=lambda t: (-t.priority, t.name))
    splits: dict[str, dict[str, TierAccelerators]] = {
        pool.name: tier_accelerators(spec.tiers, pool.nodes * pool.accelerators_per_node)
        for pool in spec.pools
    }
    xpool_image = spec.images.xpool
    key_env = spec.xinference.api_key_env
    secret_env = (
        [
            {
                "name": key_env,
                "valueFrom": {
                    "secretKeyRef": {"name": "xpool-credentials", "key": key_env, "optional": True}
                },
            }
        ]
        if key_env
        else []
    )
    config_volume = [{"name": "platform", "configMap": {"name": PLATFORM_CONFIGMAP}}]
    config_mount = [{"name": "platform", "mountPath": MOUNT, "readOnly": True}]
    platform_path = f"{MOUNT}/platform.yaml"

    # 0 Namespace
    out.add(0, "Namespace", "namespace.yaml.j2", name=ns, labels=labels("namespace"))

    # 1 PriorityClasses
    for tier in tiers:
        name = f"{part_of}-{slug(tier.name)}"
        out.add(
            1,
            "PriorityClass",
            "priorityclass.yaml.j2",
            name=name,
            tier=tier.name,
            labels=labels("priority", tier=tier.name),
            value=tier.priority,
            description=(
                f"xpool tier {tier.name} of {part_of}: "
                + ("preemptible" if tier.preemptible else "not preemptible")
                + (", borrows idle capacity" if tier.borrow else "")
            ),
        )

    # 2 ServiceAccount and RBAC
    queue_names = sorted(queue_name(platform, t, p) for t in tiers for p in spec.pools)
    rbac_labels = labels("reconciler")
    out.add(
        2,
        "ServiceAccount",
        "serviceaccount.yaml.j2",
        name=SERVICE_ACCOUNT,
        namespace=ns,
        labels=rbac_labels,
        comment="The identity of the reconciler.",
    )
    cluster_role = f"xpool-{part_of}-queues"
    out.add(
        2,
        "ClusterRole",
        "clusterrole.yaml.j2",
        name=cluster_role,
        labels=rbac_labels,
        queues=queue_names,
    )
    out.add(
        2,
        "ClusterRoleBinding",
        "clusterrolebinding.yaml.j2",
        name=cluster_role,
        labels=rbac_labels,
        role=cluster_role,
        service_account=SERVICE_ACCOUNT,
        namespace=ns,
    )
    launch_chunks = launch_configmaps(specs)
    out.add(
        2,
        "Role",
        "role.yaml.j2",
        name="xpool-reconciler",
        namespace=ns,
        labels=rbac_labels,
        comment=comment_lines(
            "Everything the reconciler (`xpool reconcile`) touches in this namespace, and "
            "nothing else: no create/delete of workloads, no secrets, no wildcards."
        ),
        rules=reconciler_rules([*(name for name, _ in launch_chunks), PLATFORM_CONFIGMAP]),
    )
    out.add(
        2,
        "RoleBinding",
        "rolebinding.yaml.j2",
        name="xpool-reconciler",
        namespace=ns,
        labels=rbac_labels,
        role="xpool-reconciler",
        service_account=SERVICE_ACCOUNT,
    )
    gateway_rbac_labels = labels("gateway")
    out.add(
        2,
        "ServiceAccount",
        "serviceaccount.yaml.j2",
        name=GATEWAY,
        namespace=ns,
        labels=gateway_rbac_labels,
        comment="The identity of the gateway replicas: they read the routes and report in Leases.",
    )
    out.add(
        2,
        "Role",
        "role.yaml.j2",
        name=GATEWAY,
        namespace=ns,
        labels=gateway_rbac_labels,
        comment=comment_lines(
            "What each gateway replica (`xpool gateway`) touches: it reads the routes and "
            "reports, in a Lease of its own, what it routes. Nothing else, no secrets."
        ),
        rules=gateway_rules(),
    )
    out.add(
        2,
        "RoleBinding",
        "rolebinding.yaml.j2",
        name=GATEWAY,
        namespace=ns,
        labels=gateway_rbac_labels,
        role=GATEWAY,
        service_account=GATEWAY,
    )

    # 3 ConfigMaps
    conf = "volcano-scheduler-hierarchy.conf" if spec.kubernetes.queue_hierarchy else None
    out.add(
        3,
        "ConfigMap",
        "configmap.yaml.j2",
        name=VOLCANO_CONFIGMAP,
        namespace=VOLCANO_NAMESPACE,
        labels=labels("volcano-scheduler"),
        comment=(
            "Volcano's scheduler configuration (cluster-wide: it replaces the one the Volcano "
            "chart installs)."
        ),
        data={"volcano-scheduler.conf": policy_text(conf or "volcano-scheduler.conf")},
    )
    out.add(
        3,
        "ConfigMap",
        "configmap.yaml.j2",
        name=PLATFORM_CONFIGMAP,
        namespace=ns,
        labels=labels("platform"),
        comment="The platform file, as given; the gateway and the reconciler read it.",
        data={"platform.yaml": platform_text},
    )
    for name, data in launch_chunks:
        out.add(
            3,
            "ConfigMap",
            "configmap.yaml.j2",
            name=name,
            namespace=ns,
            labels=labels("launch-specs"),
            comment="Xinference registration and launch spec per model version (JSON per key).",
            data=data,
        )

    # 4 Queues
    hierarchy = spec.kubernetes.queue_hierarchy
    for pool in spec.pools:
        total = pool.nodes * pool.accelerators_per_node
        split = splits[pool.name]
        parent = parent_queue_name(platform, pool) if hierarchy else None
        if parent:
            floor = sum(s.guarantee for s in split.values())
            out.add(
                4,
                "Queue",
                "queue.yaml.j2",
                name=parent,
                labels=labels("queue", pool=pool.name),
                comment=f"Pool {pool.name}: parent of its tiers' queues ({total} accelerators).",
                parent="root",
                priority=0,
                reclaimable=False,
                deserved=pool_resources(pool, total),
                guarantee=pool_resources(pool, floor) if floor else None,
                capability=pool_resources(pool, total),
            )
        for tier in tiers:
            mine = split[tier.name]
            others = sum(s.guarantee for name, s in split.items() if name != tier.name)
            capability = max(mine.deserved, total - others) if tier.borrow else mine.deserved
            name = queue_name(platform, tier, pool)
            out.add(
                4,
                "Queue",
                "queue.yaml.j2",
                name=name,
                labels=labels("queue", tier=tier.name, pool=pool.name),
                comment=(
                    f"Tier {tier.name} on {pool.name}: deserved {mine.deserved}, guarantee "
                    f"{mine.guarantee}, capability {capability} of {total} accelerators."
                ),
                parent=parent,
                priority=tier.priority,
                reclaimable=reclaimable(tier),
                deserved=pool_resources(pool, mine.deserved),
                guarantee=pool_resources(pool, mine.guarantee) if mine.guarantee else None,
                capability=pool_resources(pool, capability),
            )

    # 5 Deployments and Services
    supervisor_labels = labels(SUPERVISOR)
    out.add(
        5,
        "Deployment",
        "deployment.yaml.j2",
        name=SUPERVISOR,
        namespace=ns,
        labels=supervisor_labels,
        selector=selector(SUPERVISOR),
        comment="The Xinference supervisor: model registry and launch API; no accelerator.",
        replicas=1,
        container="supervisor",
        image=spec.images.xinference.supervisor,
        command=[
            "xinference-supervisor",
            "-H",
            "0.0.0.0",
            "--port",
            str(SUPERVISOR_PORT),
            "--supervisor-port",
            "9999",
        ],
        env=[{"name": "XINFERENCE_HOME", "value": "/data"}],
        ports=[{"name": "http", "port": SUPERVISOR_PORT}, {"name": "rpc", "port": 9999}],
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
        5,
        "Service",
        "service.yaml.j2",
        name=SUPERVISOR,
        namespace=ns,
        labels=supervisor_labels,
        selector=selector(SUPERVISOR),
        ports=[{"name": "http", "port": SUPERVISOR_PORT}, {"name": "rpc", "port": 9999}],
    )
    gateway_port = int(spec.gateway.listen.rsplit(":", 1)[1])
    gateway_labels = labels(GATEWAY)
    out.add(
        5,
        "Deployment",
        "deployment.yaml.j2",
        name=GATEWAY,
        namespace=ns,
        labels=gateway_labels,
        selector=selector(GATEWAY),
        comment=(
            "The xpool gateway: routes, drains and canaries requests; reports in Lease "
            "xpool-gateway-<pod>."
        ),
        replicas=2,
        container="gateway",
        image=xpool_image,
        command=["xpool", "gateway", platform_path, "--listen", f"0.0.0.0:{gateway_port}"],
        env=[
            # the replica id (`--replica` default): the pod name, unique among the replicas
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            *secret_env,
        ],
        ports=[{"name": "http", "port": gateway_port}],
        resources={"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        mounts=config_mount,
        volumes=config_volume,
        service_account=GATEWAY,
        # on SIGTERM a replica finishes its requests (each ends within requestTimeout), then
        # withdraws its Lease: give it that long before the kubelet kills it
        termination_grace=math.ceil(spec.gateway.request_timeout) + GATEWAY_STOP_SECONDS,
    )
    out.add(
        5,
        "Service",
        "service.yaml.j2",
        name=GATEWAY,
        namespace=ns,
        labels=gateway_labels,
        selector=selector(GATEWAY),
        ports=[{"name": "http", "port": gateway_port}],
    )

    # 6 Worker groups
    ascend_image = spec.images.xinference.ascend
    if ascend_image is None and any(p.vendor == "ascend" for p in spec.pools):
        out.notes.append(
            "spec.images.xinference.ascend is not set: Xinference publishes no Ascend image, "
            f"so workers use '{ASCEND_IMAGE_FALLBACK}', which you build "
            "(docs/scheduling.md, Images)"
        )
    for pool in spec.pools:
        image = (
            spec.images.xinference.nvidia
            if pool.vendor == "nvidia"
            else ascend_image or ASCEND_IMAGE_FALLBACK
        )
        total = pool.nodes * pool.accelerators_per_node
        for tier in tiers:
            mine = splits[pool.name][tier.name]
            others = sum(s.guarantee for name, s in splits[pool.name].items() if name != tier.name)
            groups = [(False, mine.deserved)]
            if tier.borrow and not tier.preemptible:
                groups.append((True, max(0, total - others - mine.deserved)))
            for burst, accelerators in groups:
                if accelerators == 0:
                    continue
                name = job_name(tier, pool, burst)
                pod_labels = labels("xinference-worker", tier=tier.name, pool=pool.name)
                preemptable = tier.preemptible or burst
                out.add(
                    6,
                    "Job",
                    "worker-job.yaml.j2",
                    name=name,
                    namespace=ns,
                    labels=pod_labels,
                    pod_labels=pod_labels,
                    comment=(
                        f"Xinference workers of tier {tier.name} on {pool.name}: "
                        + (
                            f"borrowed capacity (up to {accelerators} accelerators), 0 workers "
                            "until the reconciler scales them; preemptable so reclaim can "
                            "take them back."
                            if burst
                            else f"{accelerators} accelerators, the tier's deserved share."
                        )
                    ),
                    queue=queue_name(platform, tier, pool),
                    priority_class=f"{part_of}-{slug(tier.name)}",
                    min_available=0 if burst else 1,
                    preemptable="true" if preemptable else "false",
                    node_selector=node_selector(pool),
                    image=image,
                    metrics_port=WORKER_METRICS_PORT,
                    command=[
                        "sh",
                        "-c",
                        (
                            f"exec xinference-worker -e http://{SUPERVISOR}.{ns}.svc:"
                            f'{SUPERVISOR_PORT} -H "$POD_IP" '
                            f"--metrics-exporter-port {WORKER_METRICS_PORT}"
                        ),
                    ],
                    env=[
                        {
                            "name": "POD_IP",
                            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                        },
                        {"name": "XINFERENCE_HOME", "value": "/data"},
                        {"name": "XPOOL_TIER", "value": tier.name},
                        {"name": "XPOOL_POOL", "value": pool.name},
                    ],
                    tasks=[
                        {
                            "name": f"worker-{size}",
                            "replicas": 0 if burst else count,
                            "resources": {
                                "requests": pool_resources(pool, size),
                                "limits": {
                                    resource_name(pool): size,
                                    "memory": pool_resources(pool, size)["memory"],
                                },
                            },
                        }
                        for size, count in worker_sizes(accelerators, pool.accelerators_per_node)
                    ],
                )

    # 7 Reconciler
    reconciler_labels = labels("xpool-reconciler")
    out.add(
        7,
        "CronJob",
        "cronjob.yaml.j2",
        name="xpool-reconciler",
        namespace=ns,
        labels=reconciler_labels,
        schedule=spec.kubernetes.reconcile_schedule,
        starting_deadline=30,
        active_deadline=50,
        service_account=SERVICE_ACCOUNT,
        image=xpool_image,
        command=["xpool", "reconcile", platform_path, "--once"],
        env=secret_env,
        resources={"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        mounts=config_mount,
        volumes=config_volume,
    )

    # 8 Monitoring
    _monitoring(out, platform, tiers, ns, labels("monitoring"))
    return out


def _monitoring(
    out: Built, platform: Platform, tiers: list[Tier], ns: str, labels: dict[str, str]
) -> None:
    q = policy_yaml("promql.yaml")
    limits = q["alerts"]
    vendors = sorted({p.vendor for p in platform.spec.pools})
    top = tiers[0].name
    rules = [
        {
            "alert": f"XpoolAcceleratorUtilizationHigh{vendor.capitalize()}",
            "expr": f"{q['utilization'][vendor]} > {limits['utilizationPercent']}",
            "for": limits["for"],
            "labels": {"severity": "warning", "vendor": vendor},
            "annotations": {
                "summary": f"{vendor} accelerator busier than {limits['utilizationPercent']}%",
                "description": (
                    "Sustained high utilisation: check QPS and saturation per instance before "
                    "adding instances (batching keeps utilisation high)."
                ),
            },
        }
        for vendor in vendors
    ]
    rules.append(
        {
            "alert": f"XpoolLatencyHigh{top}",
            "expr": f"{q['latencyP99OfTier'].replace('$TIER', top)} > {limits['latencySeconds']}",
            "for": limits["for"],
            "labels": {"severity": "critical", "tier": top},
            "annotations": {
                "summary": f"Tier {top} p99 latency above {int(limits['latencySeconds'] * 1000)} ms",
            },
        }
    )
    rules.append(
        {
            "alert": "XpoolErrorRateHigh",
            "expr": f"{q['errorRate']} > {limits['errorRatio']}",
            "for": limits["for"],
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": f"More than {limits['errorRatio']:.0%} of gateway requests fail",
            },
        }
    )
    name = f"xpool-{platform.metadata.name}"
    out.add(
        8,
        "PrometheusRule",
        "prometheusrule.yaml.j2",
        name=name,
        namespace=ns,
        labels=labels,
        group=f"xpool.{platform.metadata.name}",
        rules=rules,
    )
    dashboard = _dashboard(platform, q, vendors)
    out.add(
        8,
        "ConfigMap",
        "configmap.yaml.j2",
        name=f"xpool-{platform.metadata.name}-dashboard",
        namespace=ns,
        labels={**labels, "grafana_dashboard": "1"},
        comment="Grafana dashboard (picked up by the Grafana sidecar via grafana_dashboard=1).",
        data={"xpool.json": json.dumps(dashboard, indent=2, sort_keys=True) + "\n"},
    )


def _dashboard(platform: Platform, q: dict[str, Any], vendors: list[str]) -> dict[str, Any]:
    def panel(i: int, title: str, targets: list[tuple[str, str]], unit: str) -> dict[str, Any]:
        return {
            "id": i + 1,
            "title": title,
            "type": "timeseries",
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [
                {"expr": expr, "legendFormat": legend, "refId": chr(ord("A") + j)}
                for j, (expr, legend) in enumerate(targets)
            ],
        }

    panels = [
        ("Accelerator utilisation", [(q["utilization"][v], v) for v in vendors], "percent"),
        ("QPS per tier", [(q["qps"], "{{tier}}")], "reqps"),
        ("p99 latency per tier", [(q["latencyP99"], "{{tier}}")], "s"),
        ("Ready instances per tier", [(q["instances"], "{{tier}}")], "short"),
    ]
    return {
        "title": f"xpool: {platform.metadata.name}",
        "uid": f"xpool-{platform.metadata.name}"[:40],
        "schemaVersion": 39,
        "tags": ["xpool"],
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
            ]
        },
        "panels": [panel(i, *p) for i, p in enumerate(panels)],
    }


def launch_configmaps(specs: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    """Launch specs as ConfigMap data, one key per model version, split into as many
    ConfigMaps (`xpool-launch-specs`, `-1`, `-2`, ...) as the 1 MiB object limit needs."""
    chunks: list[dict[str, str]] = [{}]
    size = 0
    for s in specs:
        key = f"{s['model']}--{s['version']}.json"
        value = json.dumps(
            {k: s[k] for k in ("tier", "pool", "vendor", "registration", "launch")},
            sort_keys=True,
            separators=(",", ":"),
        )
        entry = len(key) + len(value.encode())
        if chunks[-1] and size + entry > LAUNCH_CONFIGMAP_BYTES:
            chunks.append({})
            size = 0
        chunks[-1][key] = value
        size += entry
    return [
        (LAUNCH_CONFIGMAP if i == 0 else f"{LAUNCH_CONFIGMAP}-{i}", data)
        for i, data in enumerate(chunks)
    ]
