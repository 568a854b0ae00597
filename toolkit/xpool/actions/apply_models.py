"""The Xinference half of `apply`: every model version registered and `instances.min` ready
instances of each model's stable version on the platform's remote Xinference (idempotent:
one model UID per instance, running ones adopted; see adapters/xinference.py). Its inputs
are checked first (`prepare_models`), before the Kubernetes half writes anything."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from xpool.actions.runtime import Runtime
from xpool.adapters.xinference import api_key_from_env, ensure_instances
from xpool.errors import InputError, Problem
from xpool.local.models import resolve_local_sources
from xpool.local.up_state import state_dir_for
from xpool.render.instances import Want
from xpool.resolve import ResolvedPlatform

THIS_HOST_SCHEMES = ("local://", "s3://")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class InstanceOutcome:
    uid: str
    action: str  # launched | relaunched | unchanged


@dataclass(frozen=True)
class PreparedModels:
    """What the Xinference half needs, every input of it checked."""

    endpoint: str
    api_key: str | None
    wants: list[Want]  # stable versions with instances, sources readable by that Xinference


def prepare_models(
    resolved: ResolvedPlatform, *, dry_run: str, runtime: Runtime
) -> PreparedModels | None:
    """Check every input of the Xinference half, so that `apply` stops before the Kubernetes
    half writes anything: sources only this host can serve, for a remote Xinference; the API
    key's variable; file:// and s3:// sources (s3:// ones downloaded, exit 3 when the
    endpoint fails) and built-in models written. A client dry run contacts nothing, so it
    checks only the first. None for an embedded Xinference, which `xpool up` runs."""
    endpoint = resolved.platform.spec.xinference.endpoint
    if endpoint == "embedded":
        runtime.log(
            "xinference.endpoint is embedded: `xpool up FILE` runs it and its models; skipping"
        )
        return None
    wants = [w for w in resolved.wants() if w.count > 0]
    here_only = _refuse_here_only(wants, endpoint)
    if dry_run == "client":
        return PreparedModels(endpoint, None, wants)
    api_key = api_key_from_env(resolved.platform)
    if here_only:
        state = state_dir_for(resolved.name, None)
        state.mkdir(parents=True, exist_ok=True)
        wants = resolve_local_sources(wants, state, resolved.platform)
    return PreparedModels(endpoint, api_key, wants)


def apply_models(
    prepared: PreparedModels, *, dry_run: str, timeout: float, runtime: Runtime
) -> list[InstanceOutcome] | None:
    """One outcome per wanted instance, or None for a dry run, whose findings go to the log."""
    endpoint, wants = prepared.endpoint, prepared.wants
    if dry_run == "client":
        for want in wants:
            runtime.log(f"--dry-run=client: would ensure {', '.join(want.uids())} at {endpoint}")
        return None
    with runtime.xinference(endpoint, prepared.api_key) as client:
        runtime.log(f"Xinference {client.check_version()} at {endpoint}")
        if dry_run == "server":
            running = {i.uid for i in client.instances()}
            for uid in (uid for want in wants for uid in want.uids()):
                verb = "kept" if uid in running else "launched"
                runtime.log(f"--dry-run=server: {uid} would be {verb}")
            return None
        result = ensure_instances(client, wants, timeout=timeout, progress=runtime.log)
    return (
        [InstanceOutcome(uid, "launched") for uid in result.launched]
        + [InstanceOutcome(uid, "relaunched") for uid in result.replaced]
        + [InstanceOutcome(uid, "unchanged") for uid in result.adopted]
    )


def _refuse_here_only(wants: list[Want], endpoint: str) -> bool:
    """Whether a want's source is served from this host's state directory (local://, s3://);
    refused (exit 2) unless Xinference runs on this host.

    Built-in models live in xpool's state directory and s3:// sources are downloaded into
    it (Xinference reads no s3:// URI): only a Xinference on this host can use them."""
    here_only = {
        scheme
        for w in wants
        for scheme in THIS_HOST_SCHEMES
        if scheme in json.dumps(w.registration)
    }
    if here_only and urlsplit(endpoint).hostname not in LOOPBACK:
        raise InputError(
            [
                Problem(
                    "spec.models",
                    "",
                    f"{' and '.join(sorted(here_only))} sources are served from this host's "
                    f"state directory; Xinference at {endpoint} cannot read them: use hf://, "
                    "modelscope:// or file:// paths on its workers",
                )
            ]
        )
    return bool(here_only)
