"""`render_platform`: platform + plan -> Kubernetes objects in apply order, and launch specs.

Pure: reads only the packaged templates and policies. Every object is laid out by a template,
parsed back, and every Volcano object is validated through the generated client
(`xpool.volcano`) and must serialize back to exactly what was rendered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from xpool.capacity.plan import CapacityPlan
from xpool.catalog.architectures import Architecture
from xpool.config.models import Platform
from xpool.config.mounted import Mount
from xpool.errors import InputError
from xpool.render.build import build
from xpool.render.environment import environment, parse_yaml
from xpool.render.launch import launch_specs
from xpool.volcano import Job, PodGroup, Queue, to_manifest

VOLCANO_MODELS: dict[str, type[BaseModel]] = {"Queue": Queue, "Job": Job, "PodGroup": PodGroup}


class RenderError(ValueError):
    """A rendered object is not what the builders meant (a bug in xpool, not in the input)."""


@dataclass(frozen=True)
class RenderedObject:
    kind: str
    name: str
    namespace: str | None
    text: str  # the YAML document as the template laid it out (comments kept)
    obj: dict[str, Any]  # the same document parsed
    shared: bool = False  # the cluster's, not this platform's (items.Item)


@dataclass
class Rendering:
    objects: list[RenderedObject] = field(default_factory=list)
    launch_specs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def yaml(self) -> str:
        """A multi-document YAML stream in apply order."""
        return "".join(f"---\n{o.text}" for o in self.objects)

    def json(self) -> str:
        return (
            json.dumps(
                {"apiVersion": "v1", "kind": "List", "items": [o.obj for o in self.objects]},
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )

    def files(self) -> list[tuple[str, str]]:
        """(`NN-kind-name.yaml`, document) per object, numbered in apply order."""
        width = max(2, len(str(len(self.objects))))
        return [
            (f"{i:0{width}d}-{o.kind.lower()}-{o.name}.yaml", o.text)
            for i, o in enumerate(self.objects)
        ]


def validate_volcano(obj: dict[str, Any]) -> BaseModel:
    """Validate a Volcano object through the generated client; it must round-trip exactly."""
    model_cls = VOLCANO_MODELS[obj["kind"]]
    try:
        model = model_cls.model_validate(obj)
    except ValidationError as exc:
        raise RenderError(f"{obj['kind']} {obj['metadata']['name']}: {exc}") from None
    if to_manifest(model) != obj:
        raise RenderError(f"{obj['kind']} {obj['metadata']['name']}: does not round-trip")
    return model


def render_platform(
    platform: Platform,
    plan: CapacityPlan,
    archs: dict[str, Architecture],
    mount: Mount,
) -> Rendering:
    """`mount`: the platform ConfigMap, the platform file and the config.json files it names
    (`ResolvedPlatform.mount`)."""
    specs = launch_specs(platform, plan, archs)
    if platform.spec.kubernetes is None:
        return Rendering(
            launch_specs=specs,
            notes=["spec.kubernetes is absent: nothing to render for Kubernetes"],
        )
    for pool in platform.spec.pools:
        if pool.vendor == "cpu":
            raise InputError(
                f"pool {pool.name}: vendor cpu runs only in the embedded default (xpool up, "
                "no spec.kubernetes); Kubernetes pools need vendor nvidia or ascend"
            )
    built = build(platform, mount, specs)
    env = environment()
    objects: list[RenderedObject] = []
    for item in sorted(built.items, key=lambda i: i.order):  # stable: builder order within
        text = env.get_template(item.template).render(**item.values)
        obj = parse_yaml(text)
        if not isinstance(obj, dict) or obj.get("kind") != item.kind:
            raise RenderError(f"{item.template} did not render a {item.kind}")
        if item.volcano:
            validate_volcano(obj)
        meta = obj["metadata"]
        objects.append(
            RenderedObject(item.kind, meta["name"], meta.get("namespace"), text, obj, item.shared)
        )
    return Rendering(objects=objects, launch_specs=specs, notes=built.notes)
