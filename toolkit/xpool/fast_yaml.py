"""A fast parse with libyaml, read as YAML 1.2 like ruamel.yaml: the platform file's first
parse, and the catalog's files. `fast_construct` also speeds up the YAML 1.1 parse of
rendered templates.

The round-trip parser that keeps line and column marks is pure Python and about seven times
slower; it is needed only to locate problems. The loader therefore parses with libyaml
first and re-parses with ruamel.yaml only when anything is wrong. To make both agree, this
loader resolves scalars by the YAML 1.2 core schema (`yes` is a string, `1e3` a float,
`010` decimal) and refuses duplicate keys (two keys equal as Python compares them, `1` and
`true` too), as ruamel.yaml does.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

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


class _CoreLoader(yaml.CSafeLoader):
    # Only the YAML 1.2 core resolvers below (no timestamps, no merge key).
    yaml_implicit_resolvers: ClassVar[dict] = {}


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


class Unsupported(ValueError):
    """A node `fast_construct` leaves to a standard constructor (a `<<` merge, `!!set`,
    `!!omap`, a duplicate or unhashable key): the caller parses again the standard way."""


def fast_construct(loader: yaml.BaseLoader, root: Node | None) -> Any:
    """The Python data of a composed document, as PyYAML's constructor builds it for plain
    maps, sequences and scalars, in half the time: strings (most of any document) are taken
    as they are and only other scalars go through the loader's constructors. An alias is
    built once and shared (no alias bomb). A key repeated in a map, a list as a key and a
    `<<` key (a merge in ruamel.yaml's YAML 1.2, a string to the core resolvers) raise
    Unsupported."""
    memo: dict[int, Any] = {}
    constructors = loader.yaml_constructors

    def scalar(node: ScalarNode) -> Any:
        construct = constructors.get(node.tag)
        if construct is None or node.tag in (_MAP, _SEQ):
            raise Unsupported(node.tag)
        return construct(loader, node)

    def walk(node: Node) -> Any:
        if node.__class__ is ScalarNode:
            return node.value if node.tag == _STR else scalar(node)
        built = memo.get(id(node))
        if built is not None:
            return built
        if node.__class__ is MappingNode:
            if node.tag != _MAP:
                raise Unsupported(node.tag)
            mapping: dict[Any, Any] = {}
            memo[id(node)] = mapping
            try:
                for k, v in node.value:
                    key = k.value if k.__class__ is ScalarNode and k.tag == _STR else walk(k)
                    mapping[key] = (
                        v.value if v.__class__ is ScalarNode and v.tag == _STR else walk(v)
                    )
            except TypeError:  # a list or map as a key
                raise Unsupported("unhashable key") from None
            if len(mapping) != len(node.value) or "<<" in mapping:
                raise Unsupported("duplicate or merge key")
            return mapping
        if node.tag != _SEQ:
            raise Unsupported(node.tag)
        items: list[Any] = []
        memo[id(node)] = items
        for v in node.value:
            items.append(v.value if v.__class__ is ScalarNode and v.tag == _STR else walk(v))
        return items

    return None if root is None else walk(root)


def load_single(text: str, loader_class: type[yaml.BaseLoader]) -> Any:
    """One document parsed by `loader_class` (libyaml's) and built by `fast_construct`."""
    loader = loader_class(text)
    try:
        return fast_construct(loader, loader.get_single_node())
    finally:
        loader.dispose()


def fast_load(text: str) -> Any:
    """Parsed data, or an exception of any kind: the caller then takes the careful path."""
    return load_single(text, _CoreLoader)
