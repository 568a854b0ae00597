"""The Jinja2 environment and the YAML helpers every template uses.

Templates and policies ship inside the package (`xpool/templates/`, `xpool/policies/`), so a
wheel carries them; this module is the only place that reads them. Undefined values fail
(`StrictUndefined`): a template never renders a silent empty string.
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined

from xpool.fast_yaml import Unsupported, load_single

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _BlockDumper(_Dumper):  # type: ignore[misc, valid-type]
    """Multi-line strings as literal blocks (the emitter falls back to quotes when it must)."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockDumper.add_representer(str, _represent_str)


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block YAML of `value`, every line indented by `indent` spaces, no trailing newline.
    Memoized on the value's JSON: a platform's worker Jobs repeat the same labels, commands
    and resources in every task, and the YAML emitter is most of rendering them."""
    return _to_yaml(json.dumps(value, ensure_ascii=False), indent)


@lru_cache(maxsize=4096)
def _to_yaml(value_json: str, indent: int) -> str:
    return dump_yaml(json.loads(value_json), indent)


def dump_yaml(value: Any, indent: int = 0) -> str:
    """`to_yaml` without the memo, for a value rendered once: a ConfigMap's data, megabytes
    (a platform file, launch specs) that the memo's JSON round trip would only copy."""
    text = yaml.dump(
        value,
        Dumper=_BlockDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    )
    if text.endswith("...\n"):  # a bare scalar ends with a document end marker
        text = text[: -len("...\n")]
    pad = " " * indent
    return "\n".join(pad + line if line else line for line in text.rstrip("\n").split("\n"))


_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9._/-]*$")
_AMBIGUOUS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def quote(value: Any) -> str:
    """A scalar as YAML that keeps its type: plain when unambiguous, else a JSON string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and _PLAIN.match(value) and value.lower() not in _AMBIGUOUS:
        return value
    return json.dumps(value, ensure_ascii=False)


def parse_yaml(text: str) -> Any:
    """A rendered template's object (YAML 1.1, as the dumper above quotes for); the fast
    constructor does plain documents, PyYAML's own what it leaves (a merge key, a `!!set`)."""
    try:
        return load_single(text, _Loader)
    except Unsupported:
        return yaml.load(text, Loader=_Loader)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("xpool", "templates"),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = quote
    env.filters["to_yaml"] = to_yaml
    env.filters["dump_yaml"] = dump_yaml
    return env


@cache
def policy_text(name: str) -> str:
    """A file of `xpool/policies/`, e.g. `volcano-scheduler.conf`."""
    return resources.files("xpool").joinpath("policies", name).read_text(encoding="utf-8")


@cache
def policy_yaml(name: str) -> Any:
    return parse_yaml(policy_text(name))
