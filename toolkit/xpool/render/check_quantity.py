"""Kubernetes resource quantities: parse, compare, and tell which resources must be whole.

The grammar (k8s.io/apimachinery/pkg/api/resource/quantity.go)::

    <quantity>        ::= <signedNumber><suffix>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
    <signedNumber>    ::= <number> | <sign><number>
    <sign>            ::= "+" | "-"
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>

Values are exact ``Fraction`` s, so ``"500m" == "0.5"`` and ``"1Gi" > "1G"`` compare as the API
server does. A JSON number is read as the text of the number, as the API server does.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

_QUANTITY = re.compile(
    r"^(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|m|k|M|G|T|P|E)?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# Far beyond any real resource; refusing it keeps exact arithmetic cheap.
_MAX_EXPONENT = 1000

# Native resources that must be whole numbers (k8s.io/kubernetes pkg/apis/core/helper
# IsIntegerResourceName); extended resources (vendor domain, e.g. nvidia.com/gpu) must be too.
_INTEGER_RESOURCES = frozenset(
    {
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    }
)


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity."""


def parse_quantity(value: Any) -> Fraction:
    """The exact value of a Kubernetes quantity (``"500m"`` -> 1/2); QuantityError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise QuantityError(f'{value!r} is not a quantity (expected e.g. 2, "500m" or "64Gi")')
    return _parse_text(value if isinstance(value, str) else repr(value))


@lru_cache(maxsize=1024)
def _parse_text(text: str) -> Fraction:
    """Memoized: a platform's pod templates repeat the same few amounts thousands of times."""
    match = _QUANTITY.match(text)
    if match is None:
        raise QuantityError(
            f"{text!r} is not a quantity: write a number with an optional suffix "
            '(m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or e<exponent>), e.g. "500m", "64Gi"'
        )
    number = Fraction(match["number"])
    if match["sign"] == "-":
        number = -number
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * (1024 ** _BINARY[suffix])
    exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])
    if abs(exponent) > _MAX_EXPONENT:
        raise QuantityError(f"{text!r} is out of range: its exponent is {exponent}")
    return number * Fraction(10) ** exponent


def is_quantity(value: Any) -> bool:
    try:
        parse_quantity(value)
    except QuantityError:
        return False
    return True


def is_native_resource(name: str) -> bool:
    """No domain, or a ``kubernetes.io`` domain (``cpu``, ``memory``, ``hugepages-2Mi``)."""
    if "/" not in name:
        return True
    domain = name.split("/", 1)[0]
    return domain == "kubernetes.io" or domain.endswith(".kubernetes.io")


def is_extended_resource(name: str) -> bool:
    """A vendor resource such as ``nvidia.com/gpu`` or ``huawei.com/Ascend910``."""
    return not is_native_resource(name) and not name.startswith("requests.")


def is_integer_resource(name: str) -> bool:
    return name in _INTEGER_RESOURCES or is_extended_resource(name)


def quantity_value_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` as an amount of resource ``name`` (format, sign, wholeness).

    Mirrors k8s pkg/apis/core/validation ValidateResourceQuantityValue, which Volcano's queue
    webhook calls for capability, deserved and guarantee.
    """
    if value == "" or value is None:
        return 'is empty: give an amount such as 2, "500m" or "64Gi"'
    try:
        amount = parse_quantity(value)
    except QuantityError as exc:
        return str(exc)
    if amount < 0:
        return f"{value!r} is negative: amounts of resources must be >= 0"
    if is_integer_resource(name) and amount.denominator != 1:
        return f"{value!r} is not a whole number: {name} is counted in whole units"
    return None


def format_quantity(value: Fraction) -> str:
    """A short human form of an exact amount, for messages (``4``, ``0.5``, ``64Gi``, ``1/3``)."""
    if value.denominator == 1:
        n = value.numerator
        for power, suffix in ((4, "Ti"), (3, "Gi"), (2, "Mi")):
            if n and abs(n) >= 1024**power and n % 1024**power == 0:
                return f"{n // 1024**power}{suffix}"
        return str(n)
    as_float = float(value)
    return f"{as_float:g}" if Fraction(as_float) == value else str(value)
