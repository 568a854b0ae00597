"""Names of the rendered objects that other parts of xpool find by name.

The reconciler sets the Queues' shares by name (actions/reconciler_wiring.py), the gateway reads its
routes ConfigMap, and the Roles grant access to these names only; every one is spelled here.
"""

from __future__ import annotations

from xpool.config.derived_names import job_name as job_name
from xpool.config.derived_names import parent_queue_name as parent_queue_name
from xpool.config.derived_names import priority_class_name as priority_class_name
from xpool.config.derived_names import queue_name as queue_name
from xpool.config.derived_names import queues_cluster_role_name as queues_cluster_role_name
from xpool.config.derived_names import worker_pod_name as worker_pod_name
from xpool.config.derived_names import worker_task_name as worker_task_name

SUPERVISOR = "xinference-supervisor"
WORKER = "xinference-worker"  # the worker Jobs' pods
SUPERVISOR_PORT = 9997
WORKER_METRICS_PORT = 9977
SERVICE_ACCOUNT = "xpool"
RECONCILER = "xpool-reconciler"  # the reconciler's Role, RoleBinding and CronJob
GATEWAY = "xpool-gateway"  # the gateway's StatefulSet, Service, ServiceAccount, Role and binding
GATEWAY_REPLICAS = 2
WORKER_DRAIN = "xpool-worker-drain"  # the worker pods' drain sidecar: ServiceAccount, Role, binding
DRAIN_TIMEOUT_ANNOTATION = "xpool.io/drain-timeout-seconds"  # on worker pods: what the grace covers
DRAIN_MARGIN_SECONDS = 30  # grace after drainTimeout: the API calls, then Xinference's own stop
ROUTES_CONFIGMAP = "xpool-routes"  # gateway/source.py; written by the reconciler
STATE_CONFIGMAP = "xpool-reconciler-state"  # reconcile/memory_store.py
ROLLOUTS_CONFIGMAP = "xpool-rollouts"  # reconcile/rollout_store.py
PLATFORM_CONFIGMAP = "xpool-platform"
LAUNCH_CONFIGMAP = "xpool-launch-specs"
CREDENTIALS_SECRET = "xpool-credentials"  # created by the operator: API keys, one key each
LEASE = "xpool-reconciler"
MOUNT = "/etc/xpool"
VOLCANO_NAMESPACE = "volcano-system"
VOLCANO_CONFIGMAP = "volcano-scheduler-configmap"


def gateway_report_lease(replica: str) -> str:
    """The Lease in which gateway replica `replica` reports (gateway/replica_report.py)."""
    return f"{GATEWAY}-{replica}"


def gateway_pods() -> list[str]:
    """The gateway StatefulSet's pod names, which are its replicas' ids (`--replica`)."""
    return [f"{GATEWAY}-{i}" for i in range(GATEWAY_REPLICAS)]
