"""How long one instance takes to serve a request: the simulator's service model.

An instance runs `context.batch` requests at once (continuous batching: a request takes a free
slot as soon as one opens). A request holds its slot for prefill + output tokens x per-token
decode time:

- prefill: the plan's compute roofline for `seqLen` tokens (`ttft_bound_ms`), scaled to the
  request's input tokens and divided by `planning.rooflineEfficiency` (default 0.5: engines
  reach about half of dense peak);
- decode: chosen so that a full batch of the plan's reference request (`seqLen / 2` input and
  `context.outputTokens` output tokens) completes `qps_per_instance` requests per second, the
  figure the plan and the policy use (measured `perInstanceQps`, else the decode roofline x
  efficiency). A trace whose requests are longer than the reference therefore loads an instance
  more than the policy's QPS figure assumes, as a real engine would.

Encoders (embedding, rerank) generate nothing: a request holds its slot for batch / QPS seconds.

An engine refuses a prompt longer than the model's `seqLen` and stops generating at it
(`seq_len`). A launch is ready after `cold_start`: the engine's start (`ENGINE_START_S`,
an assumption: process, runtime and graph warm-up) plus the instance's weights read from
the model store at the storage bandwidth of the pool's server profile
(`capacity.storage.cold_load_seconds`, as `xpool plan --compare` reports it).
"""

from __future__ import annotations

from dataclasses import dataclass

from xpool.capacity.plan import CapacityPlan
from xpool.capacity.storage import cold_load_seconds
from xpool.catalog.servers import default_server_for, servers
from xpool.config.models import Platform
from xpool.policy.spec import PolicySpec

ENGINE_START_S = 30.0  # engine process start and warm-up before the weights are read
FIXED_COLD_START_S = 60.0  # for a service whose pool has no server profile (tests)


@dataclass(frozen=True)
class Service:
    model: str
    tier: str
    pool: str
    accelerators: int  # per instance (TP)
    slots: int  # requests served at once (context.batch)
    qps_per_instance: float
    prefill_per_token: float  # seconds per input token
    decode_per_token: float  # seconds per output token, at the instance's batch
    reference_input: int
    reference_output: int  # 0 for encoders
    ttft_slo: float  # seconds
    headroom: float  # demand.headroom: what `static` provisions above the trace's peak
    seq_len: int = 0  # the engine's context limit in tokens; 0: none
    cold_start: float = FIXED_COLD_START_S  # seconds from launch to ready

    def prefill(self, input_tokens: int) -> float:
        if not self.reference_output:
            return self.slots / self.qps_per_instance
        return input_tokens * self.prefill_per_token

    def duration(self, input_tokens: int, output_tokens: int) -> float:
        """Seconds the request holds one slot."""
        if not self.reference_output:
            return self.slots / self.qps_per_instance
        return self.prefill(input_tokens) + output_tokens * self.decode_per_token

    def fit(self, input_tokens: int, output_tokens: int) -> int | None:
        """Output tokens the engine generates for this request, or None when it refuses the
        prompt (longer than `seq_len`); generation stops at the context limit."""
        if not self.seq_len:
            return output_tokens
        if input_tokens > self.seq_len:
            return None
        return min(output_tokens, self.seq_len - input_tokens)

    @property
    def reference_duration(self) -> float:
        return self.duration(self.reference_input, self.reference_output)


def services(platform: Platform, plan: CapacityPlan, spec: PolicySpec) -> dict[str, Service]:
    """One `Service` per model the policy can launch, on the pool and TP its plan chose."""
    efficiency = platform.spec.planning.roofline_efficiency
    storage = _storage_gbps(platform)
    out: dict[str, Service] = {}
    for model in platform.spec.models:
        placed = plan.placements.get(model.name)
        if spec.model(model.name) is None or placed is None:
            continue
        ctx = model.context
        llm = model.type == "llm"
        prefill_per_token = placed.ttft_bound_ms / 1000 / ctx.seq_len / efficiency
        reference_input = ctx.seq_len // 2
        cycle = ctx.batch / placed.qps_per_instance
        decode = max(0.0, cycle - reference_input * prefill_per_token) / ctx.output_tokens
        out[model.name] = Service(
            model=model.name,
            tier=model.tier,
            pool=placed.pool,
            accelerators=placed.tp or 1,
            slots=ctx.batch,
            qps_per_instance=placed.qps_per_instance,
            prefill_per_token=prefill_per_token,
            decode_per_token=decode,
            reference_input=reference_input,
            reference_output=ctx.output_tokens if llm else 0,
            ttft_slo=model.slo.ttft_ms / 1000,
            headroom=model.demand.headroom,
            seq_len=ctx.seq_len,
            cold_start=(
                ENGINE_START_S
                + cold_load_seconds(placed.footprint.weight_bytes, storage[placed.pool])
                if placed.pool in storage
                else FIXED_COLD_START_S
            ),
        )
    return out


def _storage_gbps(platform: Platform) -> dict[str, float]:
    """Per pool: the storage NICs' Gb/s of its server profile (the file's, else the catalog's
    first that hosts its accelerator)."""
    profiles = platform.spec.costs.server_profiles
    out = {}
    for pool in platform.spec.pools:
        key = profiles.get(pool.name)
        server = servers().get(key) if key else default_server_for(pool.accelerator)
        if server is not None:
            out[pool.name] = server.network.storage_gbps
    return out
