"""The Kubernetes quantity parser used by the render checks."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from xpool.render.check_quantity import (
    QuantityError,
    format_quantity,
    is_integer_resource,
    parse_quantity,
    quantity_value_problem,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("2", 2),
        (2, 2),
        ("1.5", Fraction(3, 2)),
        (1.5, Fraction(3, 2)),
        ("64Gi", 64 * 1024**3),
        ("1Ki", 1024),
        ("1Ei", 1024**6),
        ("1e3", 1000),
        ("1E3", 1000),
        ("1e-3", Fraction(1, 1000)),
        ("1e+2", 100),
        ("10M", 10_000_000),
        ("1k", 1000),
        ("1E", 10**18),
        ("1P", 10**15),
        ("+1", 1),
        ("-1", -1),
        ("1.", 1),
        (".5", Fraction(1, 2)),
        ("0", 0),
        ("0.1m", Fraction(1, 10_000)),
    ],
)
def test_parses(text: Any, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "8x",
        "",
        " 1",
        "1 ",
        "1Gb",
        "1gi",
        "1K",
        "1e",
        "e3",
        "1.5.0",
        ".",
        "1e1.5",
        "Gi",
        "--1",
        "1,5",
        "1e3m",
        "1e100000",
        True,
        None,
        [1],
        float("inf"),
    ],
)
def test_refuses(text: Any) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_compares_across_suffixes() -> None:
    assert parse_quantity("500m") == parse_quantity("0.5")
    assert parse_quantity("1Gi") > parse_quantity("1G")
    assert parse_quantity("1024Mi") == parse_quantity("1Gi")
    assert parse_quantity("1000m") == parse_quantity("1")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("cpu", "500m", None),
        ("nvidia.com/gpu", 8, None),
        ("huawei.com/Ascend910", "8", None),
        ("nvidia.com/gpu", "1.5", "not a whole number"),
        ("nvidia.com/gpu", "500m", "not a whole number"),
        ("cpu", "-1", "negative"),
        ("memory", "", "empty"),
        ("memory", "64GB", "not a quantity"),
        ("pods", "1.5", "not a whole number"),
        ("kubernetes.io/something", "0.5", None),
    ],
)
def test_value_problems(name: str, value: Any, fragment: str | None) -> None:
    problem = quantity_value_problem(name, value)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem


def test_integer_resources() -> None:
    assert is_integer_resource("nvidia.com/gpu")
    assert not is_integer_resource("cpu")
    assert not is_integer_resource("hugepages-2Mi")
    assert not is_integer_resource("requests.nvidia.com/gpu")


def test_format() -> None:
    assert format_quantity(Fraction(4)) == "4"
    assert format_quantity(Fraction(1, 2)) == "0.5"
    assert format_quantity(Fraction(1, 3)) == "1/3"
    assert format_quantity(parse_quantity("640Gi")) == "640Gi"
    assert format_quantity(parse_quantity("1536Mi")) == "1536Mi"
    assert format_quantity(Fraction(1024)) == "1024"
