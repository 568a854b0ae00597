"""`xpool scale FILE MODEL --instances N`: change a model's instance count on the running
`xpool up`, through its gateway's loopback admin API.

Scale up launches the next free UIDs and routes to them once ready; scale down drains the
highest-numbered instances (no new requests; in-flight ones and streams finish, up to
`autoscaling.drainTimeout`) and then terminates them. Returns when that is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xpool.errors import InputError, Problem
from xpool.local.admin import AdminClient
from xpool.local.up_state import require_up_state, state_dir_for
from xpool.resolve import resolve_platform


@dataclass(frozen=True)
class ScaleOptions:
    file: str
    model: str
    instances: int
    version: str | None = None  # default: the model's first version
    force: bool = False  # allow a count outside instances.min..max
    state_dir: str | None = None
    timeout: float = 1800.0  # seconds to wait for launches and drains

    def validate(self) -> None:
        problems = []
        if self.instances < 0:
            problems.append(Problem("--instances", "", f"{self.instances}: give 0 or more"))
        if self.timeout < 1:
            problems.append(Problem("--timeout", "", f"{self.timeout:g} s: give at least 1 s"))
        if problems:
            raise InputError(problems)


def scale(options: ScaleOptions) -> dict[str, Any]:
    """The gateway's answer: launched, terminated, drainTimeouts (UIDs) and seconds."""
    resolved = resolve_platform(options.file)
    index, model = resolved.model(options.model)
    bounds = model.instances
    if not options.force and not bounds.min <= options.instances <= bounds.max:
        raise InputError(
            [
                resolved.problem(
                    ("spec", "models", index, "instances"),
                    f"{model.name}: {options.instances} is outside min..max "
                    f"({bounds.min}..{bounds.max}); pass --force to go beyond",
                )
            ]
        )
    up = require_up_state(resolved.name, state_dir_for(resolved.name, options.state_dir))
    body: dict[str, Any] = {
        "model": model.name,
        "instances": options.instances,
        "force": options.force,
    }
    if options.version is not None:
        body["version"] = options.version
    # One attempt: a scale waits for launches and drains, and a retry would wait as long again.
    with AdminClient.of(up, timeout=options.timeout, attempts=1) as admin:
        return admin.call("POST", "/-/admin/scale", body, conflict_ok=False)
