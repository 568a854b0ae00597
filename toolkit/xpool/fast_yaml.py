"""A fast parse with libyaml, read as YAML 1.2 like ruamel.yaml: the platform file's first
parse, and the catalog's files.

The round-trip parser that keeps line and column marks is pure Python and about seven times
slower; it is needed only to locate problems. The loader therefore parses with libyaml
first and re-parses with ruamel.yaml only when anything is wrong. To make both agree, this
loader resolves scalars by the YAML 1.2 core schema (`yes` is a string, `1e3` a float,
`010` decimal) and refuses duplicate keys, as ruamel.yaml does.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import yaml

_CORE_RESOLVERS = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
]


class DuplicateKey(ValueError):
    """Raised so the caller falls back to the parser that reports where the key repeats."""


class _CoreLoader(yaml.CSafeLoader):
    yaml_implicit_resolvers: ClassVar[dict] = {}  # only the YAML 1.2 core resolvers below

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        # Fewer entries than keys written: two keys were equal (as Python, and ruamel.yaml,
        # compare them: `1` and `true` too). No `<<` merge key can add entries: only the
        # core resolvers are registered, so `<<` is a plain string here.
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) != len(node.value):
            raise DuplicateKey("duplicate key")
        return mapping


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    if text.endswith("inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float("nan") if text == ".nan" else float(text)


for _tag, _pattern, _first in _CORE_RESOLVERS:
    _CoreLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
_CoreLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_CoreLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def fast_load(text: str) -> Any:
    """Parsed data, or an exception of any kind: the caller then takes the careful path."""
    return yaml.load(text, Loader=_CoreLoader)
