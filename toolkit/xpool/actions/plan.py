"""`plan`: the capacity plan of a platform file, or (--compare) the hardware selection of its
whole workload across pools and candidate pools, with an optional written report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xpool.actions.runtime import Runtime
from xpool.capacity.hardware import HardwareComparison
from xpool.capacity.hardware_selection import CompareError, compare
from xpool.capacity.plan import CapacityPlan
from xpool.config.loader import load_platform
from xpool.errors import InputError, Problem
from xpool.report.hardware_report import write_report
from xpool.resolve import resolve_platform


@dataclass(frozen=True)
class PlanOptions:
    file: str
    compare: str | None = None  # POOL,POOL,... or "all"
    report: str | None = None  # directory for report.md and its chart

    def validate(self) -> None:
        if self.report is not None and self.compare is None:
            raise InputError("--report needs --compare POOL,POOL,...")
        if self.compare is not None and not self._named_pools():
            raise InputError("--compare needs pool names: POOL,POOL,... or 'all'")

    def _named_pools(self) -> list[str]:
        return [n.strip() for n in (self.compare or "").split(",") if n.strip()]

    def pools(self, names_in_file: list[str]) -> list[str]:
        """The pools --compare names; 'all' is every pool and candidate pool of the file."""
        return names_in_file if (self.compare or "").strip() == "all" else self._named_pools()


def plan(options: PlanOptions, runtime: Runtime) -> CapacityPlan:
    """Size every model version on every pool it may use; warnings go to the log."""
    capacity = resolve_platform(options.file).plan
    for warning in capacity.warnings:
        runtime.log(f"warning: {warning}")
    return capacity


def compare_hardware(options: PlanOptions, runtime: Runtime) -> HardwareComparison:
    """Size the whole workload on each pool --compare names, then write --report if asked.

    The file is loaded, not resolved: a workload that does not fit today's pools is exactly
    what a comparison of candidate pools is for."""
    loaded = load_platform(options.file)
    spec = loaded.platform.spec
    names = options.pools([p.name for p in spec.pools] + [c.name for c in spec.candidate_pools])
    try:
        result = compare(loaded.platform, loaded.architectures, names)
    except CompareError as exc:
        raise InputError(
            [
                loaded.problem(p.path, p.message)
                if p.path
                else Problem(options.file, "", p.message)
                for p in exc.problems
            ]
        ) from None
    for warning in result.warnings:
        runtime.log(f"warning: {warning}")
    if options.report is not None:
        written = _write_report(result, options, options.report)
        runtime.log("wrote " + ", ".join(str(w) for w in written))
    return result


def _write_report(result: HardwareComparison, options: PlanOptions, report: str) -> list[Path]:
    command = f"xpool plan {options.file} --compare {options.compare} --report {report}"
    try:
        return write_report(result, Path(report), source=options.file, command=command)
    except ImportError:
        raise InputError("--report needs matplotlib: pip install 'xpool[report]'") from None
    except OSError as exc:
        raise InputError(f"--report {report}: cannot write: {exc}") from None
