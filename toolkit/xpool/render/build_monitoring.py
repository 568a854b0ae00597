"""Monitoring: a PrometheusRule of xpool's alerts and a Grafana dashboard ConfigMap."""

from __future__ import annotations

import json
from typing import Any

from xpool.config.models import Platform
from xpool.render.build_context import BuildContext
from xpool.render.environment import policy_yaml
from xpool.render.items import Built

ORDER = 8  # last: it only watches


def build_monitoring(ctx: BuildContext, out: Built) -> None:
    """Alerts on the accelerators, the top tier's latency and the gateway's errors, and a
    Grafana dashboard of the same queries (policies/promql.yaml)."""
    platform, tiers, ns, labels = ctx.platform, ctx.tiers, ctx.namespace, ctx.labels("monitoring")
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
        ORDER,
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
        ORDER,
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
