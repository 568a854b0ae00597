"""The fast YAML paths build exactly what the standard parsers build: the platform file as
ruamel.yaml reads it (YAML 1.2), rendered templates as PyYAML's SafeLoader reads them (1.1)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from ruamel.yaml import YAML

from xpool.fast_yaml import Unsupported, fast_load
from xpool.render import render_platform
from xpool.render.environment import parse_yaml
from xpool.resolve import resolve_platform

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))

DOCUMENTS = [
    "a: 1\nb: [1, 2.5, -3, 0x1F, 0o17, 1_000]\n",
    "s: yes\nt: on\nu: 1e3\nv: 010\nw: ~\nx: ''\ny: .inf\nz: -.INF\nn: .nan\n",
    "k: true\nK: FALSE\nnull: 1\n? [a]\n: b\n",
    "base: &b {x: 1, y: [1, 2]}\none: *b\ntwo: *b\n",
    "list:\n- &i {a: 1}\n- *i\n- {<<: *i, b: 2}\n",
    "lit: |\n  line one\n  line two\nfold: >\n  a\n  b\n",
    '"quoted": "1"\nsingle: \'2\'\nunicode: "\\u00e9t\\u00e9"\n',
    "nested: {a: {b: {c: [[1], [2, [3]]]}}}\n",
    "",
    "- 1\n- two\n- null\n",
    "scalar\n",
]


def _ruamel(text: str) -> object:
    return YAML(typ="safe", pure=True).load(io.StringIO(text))


def _plain(value: object) -> object:
    """Floats compared by text, so `.nan` equals itself."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return repr(value)
    return value


def _outcome(parse: Callable[[str], object], text: str) -> object:
    try:
        return _plain(parse(text))
    except yaml.YAMLError as exc:  # a list as a key: the same error either way
        return type(exc)


@pytest.mark.parametrize("text", DOCUMENTS + [p.read_text() for p in EXAMPLES])
def test_platform_parse_reads_yaml_1_2_as_ruamel_does(text: str) -> None:
    """What the fast path returns is what ruamel.yaml reads; where it raises, the loader
    takes the careful path (a list as a key here)."""
    expected = _ruamel(text)
    try:
        got = fast_load(text)
    except Unsupported:  # a list as a key, a merge key
        assert any(isinstance(k, tuple) for k in expected) or "<<" in text
        return
    assert _plain(got) == _plain(expected)


@pytest.mark.parametrize("text", [*DOCUMENTS, "when: 2024-01-01\nt: 12:30:00\n"])
def test_rendered_parse_reads_yaml_1_1_as_safe_load_does(text: str) -> None:
    assert _outcome(parse_yaml, text) == _outcome(yaml.safe_load, text)


def test_every_rendered_object_parses_as_safe_load_does() -> None:
    texts = []
    for example in EXAMPLES:
        resolved = resolve_platform(example)
        rendering = render_platform(
            resolved.platform, resolved.plan, resolved.architectures, resolved.mount
        )
        texts += [doc for _, doc in rendering.files()]
    assert len(texts) > 50
    for text in texts:
        assert parse_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("a: 1\na: 2\n", {"a": 2}),  # 1.1 keeps the last, 1.2 refuses
        ("1: a\ntrue: b\n", {1: "b"}),  # equal as Python compares them
        ("s: !!set {a, b}\n", {"s": {"a", "b"}}),
        ("o: !!omap [a: 1]\n", {"o": [("a", 1)]}),
    ],
)
def test_what_the_fast_constructor_leaves_to_the_standard_one(text: str, rendered: object) -> None:
    with pytest.raises(Unsupported):  # the platform loader then takes the careful path
        fast_load(text)
    assert parse_yaml(text) == rendered


def test_aliases_are_shared_not_expanded() -> None:
    """A billion-laughs document builds in linear time: each anchor's object once."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    data = fast_load("\n".join(lines) + "\n")
    assert data["a8"][0] is data["a7"]
    assert data["a8"][0][9] is data["a6"]


def test_a_recursive_anchor_builds_a_recursive_structure() -> None:
    data = parse_yaml("a: &a {self: *a}\n")
    assert data["a"]["self"] is data["a"]
