"""The gateway's Prometheus metrics, in a registry of its own (one per app)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from xpool.gateway.routing import RoutingTable

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# The canary gate's TTFT buckets: 1 ms to about 270 s, each 25% wider than the last, so a
# bucket's middle is within 12% of any time in it (policy/canary_stats.py ranks on them).
GATE_BUCKETS = tuple(round(0.001 * 1.25**k, 6) for k in range(57))
# The `model` label of a request for a model the routing table does not know. Label values
# come only from the table (platform file, routes ConfigMap), never from what a client sends,
# so the series stay bounded; this is no DNS-1123 label, so no declared model can share it
# (the reconciler reads demand per `model` label).
UNKNOWN_MODEL = "(unknown)"


class _Inflight(Collector):
    """In-flight requests per instance, read from the routing table at scrape time (so the
    hot path pays nothing and draining instances report until they are removed)."""

    def __init__(self, table: RoutingTable) -> None:
        self._table = table

    def collect(self) -> Iterator[GaugeMetricFamily]:
        inflight = GaugeMetricFamily(
            "xpool_gateway_inflight",
            "Requests in flight per instance (streams until their last byte).",
            labels=["model", "instance"],
        )
        draining = GaugeMetricFamily(
            "xpool_gateway_instance_draining",
            "1 while an instance is draining (no new requests), else 0.",
            labels=["model", "instance"],
        )
        for slot in self._table.slots():
            inflight.add_metric([slot.model, slot.uid], slot.inflight)
            draining.add_metric([slot.model, slot.uid], 1 if slot.draining else 0)
        yield inflight
        yield draining


class BatchBacklog(Collector):
    """Batch lines not finished yet (queued or in flight) per model, and their estimated
    tokens (`batch/backlog.py`: body bytes / 4 plus the completion asked for): the demand the
    reconciler scales the lowest tier on. Read from the runner at scrape time."""

    def __init__(self, backlog: Callable[[], Mapping[str, tuple[int, int]]]) -> None:
        self._backlog = backlog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        requests = GaugeMetricFamily(
            "xpool_gateway_batch_queued_requests",
            "Batch API request lines not finished yet (queued or in flight), per model.",
            labels=["model"],
        )
        tokens = GaugeMetricFamily(
            "xpool_gateway_batch_queued_tokens",
            "Estimated prompt + completion tokens of those lines (body bytes / 4 plus "
            "max_tokens), per model.",
            labels=["model"],
        )
        for model, (lines, estimate) in sorted(self._backlog().items()):
            requests.add_metric([model], lines)
            tokens.add_metric([model], estimate)
        yield requests
        yield tokens


class GatewayMetrics:
    def __init__(self, table: RoutingTable, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "xpool_gateway_requests",
            "Requests answered, by public model, version, tier and HTTP status.",
            ["model", "version", "tier", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "xpool_gateway_request_duration_seconds",
            "From the request's arrival to the response's last byte.",
            ["model", "version", "tier"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "xpool_gateway_time_to_first_token_seconds",
            "From the request's arrival to the first response byte sent to the client.",
            ["model", "version", "tier"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.gate_ttft = Histogram(
            "xpool_gateway_gate_ttft_seconds",
            "Time to first byte of successful upstream attempts on warm instances, by version: "
            "what a canary step's latency is judged on.",
            ["model", "version"],
            buckets=GATE_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "xpool_gateway_prompt_tokens",
            "Prompt tokens of answered requests, from the answers' usage (streams included): "
            "the autoscaler's prefill load.",
            ["model", "version", "tier"],
            registry=r,
        )
        self.completion_tokens = Counter(
            "xpool_gateway_completion_tokens",
            "Completion tokens of answered requests, from the answers' usage (streams "
            "included): the autoscaler's decode load.",
            ["model", "version", "tier"],
            registry=r,
        )
        self.shed = Counter(
            "xpool_gateway_shed",
            "Requests refused with 429 by priority admission or request limits.",
            ["model", "tier", "reason"],
            registry=r,
        )
        self.retries = Counter(
            "xpool_gateway_retries",
            "Requests retried on another instance (failure before any byte was sent), by "
            "the failed attempt's upstream code.",
            ["model", "reason"],
            registry=r,
        )
        self.upstream = Counter(
            "xpool_gateway_upstream_responses",
            "Upstream attempts by the version tried and their outcome: the HTTP status, or "
            "stream_error (an SSE error as first event), stream_broken (cut after bytes were "
            "sent), transport, timeout. Retried attempts count too: the canary gate's input.",
            ["model", "version", "code"],
            registry=r,
        )
        self.drain_timeouts = Counter(
            "xpool_gateway_drain_timeouts",
            "Instances terminated with requests still in flight after drainTimeout.",
            ["model"],
            registry=r,
        )
        r.register(_Inflight(table))
