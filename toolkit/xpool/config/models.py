"""The platform file (`apiVersion: xpool.io/v1alpha1`, `kind: Platform`) as pydantic models.

Field names are snake_case in Python and camelCase in the file, like Kubernetes objects.
Only single-field rules live here; rules across fields are in `checks.py`, so that every
problem in a file can be reported at once with its position.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from xpool.config.cron import check_cron
from xpool.config.durations import Duration
from xpool.config.env_names import not_reserved
from xpool.config.ports import listen_port, url_port
from xpool.config.quantities import MEMORY_PATTERN, at_most_node_memory
from xpool.config.sizes import ByteSize

API_VERSION = "xpool.io/v1alpha1"

# `cpu`: a host without accelerators, for the embedded default (`xpool up`) on a laptop or CI.
Vendor = Literal["nvidia", "ascend", "cpu"]
ModelType = Literal["llm", "embedding", "rerank"]
WeightPrecision = Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"]
KvPrecision = Literal["fp32", "bf16", "fp16", "fp8", "int8"]

PRECISION_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}

# Kubernetes object names are built from these, so they must be DNS-1123 labels.
DnsLabel = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40),
]
TierName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")]
EnvVarName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"), AfterValidator(not_reserved)
]
Fraction = Annotated[float, Field(gt=0, le=1)]
HttpUrl = Annotated[
    str, StringConstraints(pattern=r"^https?://[^\s/]+(/.*)?$"), AfterValidator(url_port)
]

# Upper bounds above anything real, so that counts derived from them (accelerators, each
# tier's share, CPU and memory requests) stay exact integers within what a Kubernetes
# quantity holds: no cluster has more nodes (upstream supports 5,000, the largest managed
# ones 65,000), no node more cores, and no model more instances than such a cluster holds.
MAX_NODES = 100_000
MAX_CPU_PER_NODE = 10_000
MAX_INSTANCES = 1_000_000
# Requests per second: a million is beyond any one platform, and a thousandth (one request
# in 17 minutes) below any instance that serves at all. Between them the instance counts and
# shares the planner derives stay finite (`1e308` would print as `inf%`) and exact.
MAX_QPS = 1_000_000
MIN_INSTANCE_QPS = 0.001
Qps = Annotated[float, Field(ge=0, le=MAX_QPS)]
InstanceQps = Annotated[float, Field(ge=MIN_INSTANCE_QPS, le=MAX_QPS)]
# Tokens per second of one instance: a billion is beyond any accelerator server.
TokenRate = Annotated[float, Field(gt=0, le=1_000_000_000)]


class Spec(BaseModel):
    """Base: camelCase aliases, unknown fields refused, immutable once loaded."""

    # strict: YAML already types its scalars, so `nodes: true` or `share: "0.4"` is a mistake
    # to report, not a value to coerce. No infinity or NaN: `1e309` reads as infinity, which
    # no quantity here can be and which the capacity arithmetic cannot round.
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        frozen=True,
        strict=True,
        allow_inf_nan=False,
    )


class Metadata(Spec):
    name: DnsLabel
    labels: dict[str, str] = Field(default_factory=dict)


# Namespaces the cluster's own components live in: xpool's objects and its reconciler's
# rights there would mix with theirs, and deleting xpool would touch them.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "volcano-system"})


def not_a_system_namespace(namespace: str) -> str:
    if namespace in SYSTEM_NAMESPACES:
        raise ValueError(f"'{namespace}' is a system namespace; give xpool a namespace of its own")
    return namespace


class KubernetesSpec(Spec):
    namespace: Annotated[DnsLabel, AfterValidator(not_a_system_namespace)] = "xpool"
    queue_hierarchy: bool = Field(
        default=False,
        description="Render a parent Volcano queue per pool (capacity plugin enableHierarchy).",
    )
    reconcile_schedule: Annotated[str, AfterValidator(check_cron)] = Field(
        default="* * * * *", description="Cron schedule of the reconciler CronJob."
    )


class XinferenceSpec(Spec):
    endpoint: Annotated[
        str,
        StringConstraints(pattern=r"^(embedded|https?://[^\s/]+(/.*)?)$"),
        AfterValidator(url_port),
    ] = "embedded"
    api_key_env: EnvVarName | None = Field(
        default=None, description="Environment variable holding the API key (never the key itself)."
    )


class PrometheusQueries(Spec):
    """PromQL the reconciler reads; each replaces the default in policies/promql.yaml."""

    model_qps: str | None = Field(
        default=None, description="Requests per second by `model` label (gateway counters)."
    )
    model_prompt_tokens: str | None = Field(
        default=None, description="Prompt tokens per second by `model` label (gateway counters)."
    )
    model_completion_tokens: str | None = Field(
        default=None,
        description="Completion tokens per second by `model` label (gateway counters).",
    )
    model_arrival_cv2: str | None = Field(
        default=None,
        description="Squared coefficient of variation of arrival gaps by `model` label "
        "(index of dispersion of request counts); read for autoscaling.mode slo.",
    )
    model_batch_queued_requests: str | None = Field(
        default=None,
        description="Batch API lines not finished yet by `model` label (gateway gauges): "
        "demand for the model's lowest-priority capacity.",
    )
    model_batch_queued_tokens: str | None = Field(
        default=None,
        description="Estimated tokens of those lines by `model` label (gateway gauges).",
    )
    gateway_up: str | None = Field(
        default=None,
        description="Non-empty while the gateways are scraped and fresh; without it no QPS "
        "is trusted (no scale-down on missing metrics).",
    )
    utilization: dict[Vendor, str] | None = Field(
        default=None,
        description="Accelerator utilisation 0..1 per vendor; series with a `pool` label go "
        "to that pool, others to every pool of the vendor.",
    )


class PrometheusSpec(Spec):
    url: HttpUrl | None = Field(
        default=None,
        description="Prometheus the reconciler queries (default: the one `xpool up` starts).",
    )
    bearer_token_env: EnvVarName | None = Field(
        default=None, description="Environment variable holding a bearer token for Prometheus."
    )
    queries: PrometheusQueries = PrometheusQueries()


class GatewaySpec(Spec):
    listen: Annotated[
        str, StringConstraints(pattern=r"^[^\s:]+:[0-9]{1,5}$"), AfterValidator(listen_port)
    ] = "127.0.0.1:8000"
    max_inflight: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Requests in flight across all models before priority admission sheds "
        "lower tiers (default: no global limit; per-instance request limits still apply).",
    )
    tier_headroom: Annotated[float, Field(ge=0, le=0.5)] = Field(
        default=0.15,
        description="Share of maxInflight each tier below the top keeps free for the tiers "
        "above it: with 0.15, P1 is shed from 85% and P2 from 70%; P0 only when P0 alone fills it.",
    )
    request_timeout: Annotated[Duration, Field(gt=0)] = Field(
        default=600.0, description="Per request, to the end of the response (streams included)."
    )
    client_id_header: str = Field(
        default="X-Client-Id",
        description="Header naming the client: canary assignment is sticky per client.",
    )
    # A chat request with a few images (a few MiB each, base64 adds a third) fits in 16 MiB;
    # larger media belong behind a URL. The gateway holds a body, its parsed form and its
    # re-encoded form at once, so the cap also bounds its memory per request.
    max_body_size: Annotated[ByteSize, Field(ge=2**10, le=2**30)] = Field(
        default=16 * 2**20,
        description="Largest request body the gateway reads (16Mi, 512Ki, or bytes); a larger "
        "one gets 413 before it is read.",
    )
    # Python's JSON parser recurses once per level and fails near 1000 levels: the cap keeps
    # far below that. A chat request with tools and image parts is about 8 deep.
    max_json_depth: Annotated[int, Field(ge=8, le=512)] = Field(
        default=64,
        description="Deepest nesting of arrays and objects a request body may have; deeper "
        "gets 400 before it is parsed.",
    )
    api_keys_env: EnvVarName | None = Field(
        default=None,
        description="Environment variable holding the client API keys, separated by commas "
        "(never the keys themselves); set, /v1/* requires `Authorization: Bearer <key>`. On "
        "Kubernetes it comes from Secret xpool-credentials, key of the same name.",
    )


class BatchSpec(Spec):
    """The Batch API of the gateway (docs/gateway.md, "Batch API")."""

    max_file_size: Annotated[ByteSize, Field(ge=2**10, le=2**31)] = Field(
        default=200 * 2**20,
        description="Largest batch input file (200Mi, 1Gi, or bytes); a larger upload gets 400.",
    )
    max_lines: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=50_000, description="Most request lines in a batch input file; more gets 400."
    )
    store: Annotated[
        str,
        StringConstraints(
            pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,62}(/\S*)?|[A-Za-z0-9][A-Za-z0-9._-]*)$"
        ),
    ] = Field(
        default="batches",
        description="Where files and batch progress live: a directory name under the state "
        "directory (`xpool up`), or s3://bucket/prefix (the gateway on Kubernetes; "
        "credentials from the AWS_* environment).",
    )
    reserve: Annotated[int, Field(ge=0, le=1_000)] = Field(
        default=1,
        description="Request slots per instance batch requests leave free for interactive "
        "ones (of the instance's request limit, context.batch).",
    )
    instance_concurrency: Annotated[int, Field(ge=1, le=1_000)] = Field(
        default=4, description="Batch requests in flight per instance at most."
    )


class Pool(Spec):
    name: DnsLabel
    vendor: Vendor
    accelerator: str = Field(
        description="Catalog key, e.g. rtx-5090, ascend-910b (see `xpool plan`)."
    )
    nodes: Annotated[int, Field(ge=1, le=MAX_NODES)]
    accelerators_per_node: Annotated[int, Field(ge=1, le=16)] = 8
    memory_utilization: Fraction = Field(
        default=0.9,
        description="Share of device memory the engine may use (vLLM gpu_memory_utilization).",
    )
    node_labels: dict[str, str] | None = Field(
        default=None, description="Default: gpu-type=<vendor>."
    )
    resource_name: str | None = Field(
        default=None, description="Default: nvidia.com/gpu or huawei.com/Ascend910."
    )
    cpu_per_node: Annotated[int, Field(ge=1, le=MAX_CPU_PER_NODE)] = Field(
        default=64, description="CPU cores per node xpool may request (node allocatable)."
    )
    memory_per_node: Annotated[
        str, StringConstraints(pattern=MEMORY_PATTERN), AfterValidator(at_most_node_memory)
    ] = Field(default="512Gi", description="Memory per node xpool may request, e.g. 512Gi.")


class Tier(Spec):
    name: TierName
    share: Fraction
    priority: Annotated[int, Field(ge=0, le=1_000_000_000)]
    preemptible: bool = False
    borrow: bool = False
    guarantee: Annotated[float, Field(ge=0, le=1)] = 0.0


class ArchitectureConfig(Spec):
    config: str = Field(description="Path to a Hugging Face config.json, relative to this file.")


Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
SourceFile = Annotated[str, StringConstraints(pattern=r"^[^/\x00][^\x00]*$", max_length=512)]


class Measured(Spec):
    """Figures measured for one version (by a benchmark or in production), for `xpool models`."""

    qps: InstanceQps | None = Field(
        default=None, description="Requests per second one instance serves within the SLO."
    )
    ttft_ms: Annotated[float, Field(gt=0)] | None = None
    latency_ms: Annotated[float, Field(gt=0)] | None = None
    memory_gib: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Accelerator memory one instance holds."
    )
    on: str | None = Field(default=None, description="Where it was measured, e.g. a pool name.")


class VersionMetadata(Spec):
    parameters: str | None = Field(default=None, description="e.g. 32B.")
    hardware: list[str] = Field(
        default_factory=list, description="Accelerators it is built and tested for."
    )
    measured: Measured | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class ModelVersion(Spec):
    version: Annotated[
        str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-]*$", max_length=20)
    ]
    source: Annotated[str, StringConstraints(pattern=r"^(hf|modelscope|file|s3|local)://.+$")] = (
        Field(
            description="hf://, modelscope://, file://, s3://, or local://NAME for a built-in "
            "local model (local://tiny-qwen2-chat, local://all-minilm-l6-v2)."
        )
    )
    weight_precision: WeightPrecision = "bf16"
    kv_precision: KvPrecision = "bf16"
    engines: dict[Vendor, str] = Field(default_factory=dict)
    weight: Annotated[float, Field(ge=0, le=100)] | None = Field(
        default=None,
        description="Canary weight of this version in the gateway (default: the first "
        "version 100, the others 0).",
    )
    note: str | None = Field(default=None, description="What changed in this version.")
    metadata: VersionMetadata = VersionMetadata()
    checksums: dict[SourceFile, Sha256] = Field(
        default_factory=dict,
        description="sha256 of files in a file:// or s3:// source, by path inside it; checked "
        "before launch.",
    )
    size_bytes: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Total bytes of a file:// or s3:// source; checked before launch.",
    )
    chat_template: str | None = Field(
        default=None,
        description="Jinja chat template registered with the version (default: the family's).",
    )


class RolloutGate(Spec):
    """How a canary step is judged against the stable version over the step (statistics in
    docs/scheduling.md, "The gate"): pass, fail (rollback) or inconclusive (extend, then hold)."""

    max_error_rate: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.01,
        description="Margin: the canary's error rate (upstream failures / attempts) may exceed "
        "the stable version's by this much; more, with evidence, fails the step.",
    )
    max_ttft_ratio: Annotated[float, Field(ge=1, le=100)] = Field(
        default=1.25,
        description="Tolerance: canary times to first token are compared with the stable "
        "version's times x this + ttftSlackMs; slower than that, with evidence, fails the step.",
    )
    ttft_slack_ms: Annotated[float, Field(ge=0, le=600000)] = Field(
        default=50.0, description="Absolute slack on the TTFT comparison (noise floor)."
    )
    min_requests: Annotated[int, Field(ge=20, le=1000000)] = Field(
        default=50,
        description="Canary attempts (and warm TTFT samples of each version) a step needs "
        "before it can pass: at least 20 for the tests' approximations; 50 detects a canary "
        "slower than the tolerance in 3 pairs of 4 with 90% power.",
    )
    significance: Annotated[float, Field(gt=0, le=0.2)] = Field(
        default=0.01,
        description="Chance that a step of a canary as good as the stable version fails, "
        "shared by the step's end-of-step looks.",
    )
    extensions: Annotated[int, Field(ge=0, le=20)] = Field(
        default=2,
        description="Times an inconclusive step is run again before it is held for an "
        "operator (`xpool rollout promote|abort`).",
    )


class Rollout(Spec):
    """A canary release of `to`, declared in the file (or started with `xpool rollout start`)."""

    to: str
    steps: Annotated[list[Annotated[float, Field(gt=0, le=100)]], Field(min_length=1)] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0],
        description="Canary weight (percent) of each step; the last must be 100.",
    )
    interval: Duration = Field(default=600.0, description="How long each step runs.")
    gate: RolloutGate = RolloutGate()


class Context(Spec):
    batch: Annotated[int, Field(ge=1)] = 8
    seq_len: Annotated[int, Field(ge=1)] = 2048
    output_tokens: Annotated[int, Field(ge=1)] = 256
    max_batched_tokens: Annotated[int, Field(ge=1)] = 8192


class Slo(Spec):
    ttft_ms: Annotated[float, Field(gt=0)] = 500
    percentile: Annotated[float, Field(ge=50, lt=100)] = Field(
        default=99.0,
        description="Share of requests (percent) whose TTFT should be within ttftMs; what "
        "`autoscaling.mode: slo` sizes for.",
    )
    # explicit: the camelCase generator would spell it `e2EMs`
    e2e_ms: Annotated[float, Field(gt=0)] | None = Field(default=None, alias="e2eMs")


class Demand(Spec):
    peak_qps: Qps
    base_qps: Qps = 0
    headroom: Annotated[float, Field(ge=0, le=10)] = 0.2


class Instances(Spec):
    min: Annotated[int, Field(ge=0, le=MAX_INSTANCES)] = 1
    max: Annotated[int, Field(ge=1, le=MAX_INSTANCES)] = 8


class PerInstance(Spec):
    """Measured token throughput of one instance; the autoscaler sizes on tokens with it
    (docs/scheduling.md, "Autoscaling")."""

    prefill_tokens_per_second: TokenRate | None = Field(
        default=None, description="Prompt tokens one instance prefills per second."
    )
    decode_tokens_per_second: TokenRate | None = Field(
        default=None, description="Tokens one instance generates per second (LLMs only)."
    )


class Model(Spec):
    name: DnsLabel
    type: ModelType = "llm"
    tier: str
    architecture: str | ArchitectureConfig
    versions: Annotated[list[ModelVersion], Field(min_length=1)]
    pools: list[str] | None = None
    context: Context = Context()
    slo: Slo = Slo()
    demand: Demand
    per_instance_qps: InstanceQps | dict[str, InstanceQps] | None = Field(
        default=None, description="Measured QPS of one instance; one figure or one per pool."
    )
    per_instance: PerInstance | None = Field(
        default=None,
        description="Measured token throughput of one instance; else the rooflines x "
        "rooflineEfficiency, unless perInstanceQps is measured (then the autoscaler counts QPS).",
    )
    instances: Instances = Instances()
    rollout: Rollout | None = None

    def version_weights(self) -> dict[str, float]:
        """The platform file's traffic weights: declared ones as given (undeclared 0);
        with none declared, the first version takes 100 and the others 0."""
        if any(v.weight is not None for v in self.versions):
            return {v.version: float(v.weight or 0.0) for v in self.versions}
        return {v.version: (100.0 if i == 0 else 0.0) for i, v in enumerate(self.versions)}


class ScaleUp(Spec):
    qps_ratio: Fraction = 0.8
    utilization: Fraction = 0.75
    step: Annotated[int, Field(ge=1)] = 1
    interval: Duration = 30.0


class ScaleDown(Spec):
    qps_ratio: Fraction = 0.3
    utilization: Fraction = 0.3
    stabilization: Duration = 300.0


class SloSizing(Spec):
    """The queueing model's settings for `autoscaling.mode: slo` (docs/scheduling.md,
    "SLO-aware targets")."""

    headroom: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.1,
        description="Size for this much more than the observed arrival rate (it may rise "
        "while new instances load).",
    )
    service_cv: Annotated[float, Field(ge=0, le=10)] = Field(
        default=1.0,
        description="Coefficient of variation of the time a request holds its slot (1: "
        "exponential; answer lengths of chat traffic are close to it).",
    )


class Autoscaling(Spec):
    mode: Literal["band", "slo"] = Field(
        default="band",
        description="band: the scaleUp/scaleDown thresholds on load; slo: per model, the "
        "fewest instances whose predicted TTFT percentile meets slo.ttftMs (a G/G/c queue).",
    )
    slo: SloSizing = SloSizing()
    scale_up: ScaleUp = ScaleUp()
    scale_down: ScaleDown = ScaleDown()
    drain_timeout: Duration = 120.0


class Planning(Spec):
    roofline_efficiency: Fraction = Field(
        default=0.5,
        description="Share of the roofline an engine reaches; used for QPS without "
        "perInstanceQps, and for token capacities without perInstance.",
    )
    runtime_overhead_gib: Annotated[float, Field(ge=0, le=64)] = Field(
        default=1.0,
        description="Per accelerator: runtime context, communication buffers, CUDA graphs.",
    )


def default_tiers() -> list[Tier]:
    return [
        Tier(
            name="P0", share=0.4, priority=1_000_000, preemptible=False, borrow=False, guarantee=0.2
        ),
        Tier(name="P1", share=0.3, priority=100_000, preemptible=False, borrow=True),
        Tier(name="P2", share=0.3, priority=1_000, preemptible=True, borrow=True),
    ]


class CandidatePool(Pool):
    """A pool not yet bought, for `xpool plan --compare`: same shape as a pool; `nodes` may be
    omitted ("size it for me")."""

    nodes: Annotated[int, Field(ge=1, le=MAX_NODES)] | None = None  # type: ignore[assignment]
    server: str | None = Field(
        default=None,
        description="Server profile key (catalog servers.yaml); default: the first that hosts the accelerator.",
    )


class StorageAssumptions(Spec):
    model_file_allowance_gib: Annotated[float, Field(ge=0)] = Field(
        default=1.0, description="Per model version, besides weights: tokenizer, configs."
    )
    logs_gib_per_instance: Annotated[float, Field(ge=0)] = 10.0
    cache_gib_per_instance: Annotated[float, Field(ge=0)] = Field(
        default=20.0, description="Per instance: engine compile/graph caches, download scratch."
    )
    redundancy_factor: Annotated[float, Field(ge=1, le=10)] = Field(
        default=1.5,
        description="Raw/usable bytes of the distributed store: 3 for 3 replicas, 1.5 for EC 4+2.",
    )


class Costs(Spec):
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    accelerator_price: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Price per accelerator by catalog key; default: the catalog band's midpoint.",
    )
    server_price: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Price of a server without accelerators, by server profile key.",
    )
    accelerator_power_w: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="Board power per accelerator key (catalog default)."
    )
    server_profiles: dict[str, str] = Field(
        default_factory=dict, description="Server profile per pool name (for spec.pools)."
    )
    electricity_per_kwh: Annotated[float, Field(ge=0)] = 0.10
    pue: Annotated[float, Field(ge=1, le=3)] = 1.3
    utilization: Fraction = Field(
        default=0.6, description="Average share of rated server power drawn over a year."
    )
    amortization_years: Annotated[float, Field(gt=0, le=20)] = 4.0
    storage: StorageAssumptions = StorageAssumptions()


class PlacementConstraint(Spec):
    tier: str | None = Field(default=None, description="Applies to every model of this tier.")
    model: str | None = Field(default=None, description="Applies to this model.")
    vendor: Vendor | None = Field(default=None, description="e.g. ascend for 'domestic only'.")
    candidates: list[str] | None = Field(
        default=None, description="Only these pools / candidate pools."
    )
    reason: str | None = None


class Constraints(Spec):
    placement: list[PlacementConstraint] = Field(default_factory=list)
    max_power_kw: Annotated[float, Field(gt=0)] | None = None
    max_servers: Annotated[int, Field(ge=1)] | None = None
    require_rdma_for_cross_server_tp: bool = True


class XinferenceImages(Spec):
    nvidia: str = "xprobe/xinference:v4.1.0"
    ascend: str | None = Field(
        default=None,
        description="Xinference publishes no Ascend image; build one (docs/scheduling.md).",
    )
    supervisor: str = "xprobe/xinference:v4.1.0-cpu"


class Images(Spec):
    xinference: XinferenceImages = XinferenceImages()
    xpool: str = "xpool:0.1.0"


class PlatformSpec(Spec):
    kubernetes: KubernetesSpec | None = None
    xinference: XinferenceSpec = XinferenceSpec()
    prometheus: PrometheusSpec | None = None
    gateway: GatewaySpec = GatewaySpec()
    batch: BatchSpec = BatchSpec()
    pools: Annotated[list[Pool], Field(min_length=1)]
    tiers: Annotated[list[Tier], Field(min_length=1)] = Field(default_factory=default_tiers)
    models: Annotated[list[Model], Field(min_length=1)]
    autoscaling: Autoscaling = Autoscaling()
    planning: Planning = Planning()
    images: Images = Images()
    candidate_pools: list[CandidatePool] = Field(default_factory=list)
    costs: Costs = Costs()
    constraints: Constraints = Constraints()


class Platform(Spec):
    api_version: Literal["xpool.io/v1alpha1"]
    kind: Literal["Platform"]
    metadata: Metadata
    spec: PlatformSpec

    def tier(self, name: str) -> Tier:
        return next(t for t in self.spec.tiers if t.name == name)

    def pool(self, name: str) -> Pool:
        return self._pools_by_name[name]

    @cached_property
    def _pools_by_name(self) -> dict[str, Pool]:
        """Pools by name: a plan looks a pool up once per model and pool it may use."""
        return {p.name: p for p in self.spec.pools}

    def model_pools(self, model: Model) -> list[Pool]:
        """The pools a model may run on, in the user's order of preference."""
        if model.pools is None:
            return list(self.spec.pools)
        return [self.pool(name) for name in model.pools]
