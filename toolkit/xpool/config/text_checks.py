"""Checks on the raw text of an input file that the parsers would turn into tracebacks.

Bytes that are not UTF-8, characters YAML refuses, numbers longer than Python converts, and
nesting deeper than the recursive parsers follow all stop a parser with an exception that
carries no line or column. These functions find the offending place themselves, so that
each becomes a located error like any other.
"""

from __future__ import annotations

import re
import sys

# Characters YAML 1.2 does not allow in a stream (its c-printable set, complemented).
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_NUMBER = re.compile(r"[0-9][0-9_]*")
# A %YAML directive; ruamel.yaml reads the version as MAJOR.MINOR integers and stops with an
# assertion (no line, no column) on any minor version but 1 and 2.
_YAML_DIRECTIVE = re.compile(r"^%YAML[ \t]+([0-9]+)\.([0-9]+)", re.MULTILINE)
_YAML_VERSIONS = {(1, 1), (1, 2)}
_BYTE_ORDER_MARKS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


class TextProblem(ValueError):
    """Something wrong at a 1-based line and column of a file's text."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(f"{line}:{col}: {message}")
        self.line = line
        self.col = col
        self.message = message


def line_col(text: str, index: int) -> tuple[int, int]:
    """The 1-based line and column of character `index` in `text`."""
    start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - start + 1


def decode_utf8(data: bytes) -> str:
    """The text of a UTF-8 file; TextProblem at the first byte that is not UTF-8.

    A UTF-16 or UTF-32 file is named as such: its "first bad byte" is the byte-order mark,
    and saying which encoding it is tells the user what to change.
    """
    for mark, encoding in _BYTE_ORDER_MARKS.items():
        if data.startswith(mark):
            raise TextProblem(1, 1, f"the file is {encoding}; save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        before = data[line_start : exc.start].decode("utf-8")  # valid up to the bad byte
        line = data.count(b"\n", 0, exc.start) + 1
        raise TextProblem(
            line, len(before) + 1, f"byte 0x{data[exc.start]:02x} is not UTF-8; save as UTF-8"
        ) from None


def check_yaml_characters(text: str) -> None:
    """TextProblem at the first character YAML refuses (a NUL byte, a control character)."""
    found = _NOT_PRINTABLE.search(text)
    if found is not None:
        line, col = line_col(text, found.start())
        raise TextProblem(
            line, col, f"character U+{ord(found.group()):04X} is not allowed here; remove it"
        )


def check_number_lengths(text: str) -> None:
    """TextProblem at the first digit run longer than Python converts to an int.

    Beyond the limit `int()` raises a ValueError that the parsers do not locate; no field
    of a platform file or config.json needs a number anywhere near that long.
    """
    limit = sys.get_int_max_str_digits()
    if limit == 0:
        return
    for found in _NUMBER.finditer(text):
        digits = len(found.group().replace("_", ""))
        if digits > limit:
            line, col = line_col(text, found.start())
            raise TextProblem(line, col, f"a number with {digits} digits; at most {limit} are read")


def check_yaml_directives(text: str) -> None:
    """TextProblem at a `%YAML` directive naming a version other than 1.1 or 1.2, which the
    parsers refuse without saying where (YAML 1.0 predates the 1.1 they read)."""
    for found in _YAML_DIRECTIVE.finditer(text):
        version = (int(found.group(1)), int(found.group(2)))
        if version not in _YAML_VERSIONS:
            line, col = line_col(text, found.start(1))
            raise TextProblem(
                line,
                col,
                f"%YAML {found.group(1)}.{found.group(2)} is not a YAML version xpool reads "
                "(1.1 or 1.2; either is read as 1.2); remove the directive",
            )


def nesting_problem(text: str) -> TextProblem:
    """Where a file too deeply nested to parse is deepest: the innermost `[` or `{`,
    else (block nesting) the start of the most indented line."""
    depth = deepest = 0
    at = None
    for index, char in enumerate(text):
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, index
        elif char in "]}":
            depth -= 1
    if at is None:
        at = _most_indented(text)
    line, col = line_col(text, at)
    return TextProblem(line, col, "nested too deeply to read; flatten the structure")


def _most_indented(text: str) -> int:
    """The index of the first non-blank character of the most indented line."""
    best, best_indent, offset = 0, -1, 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip(" -")
        indent = len(line) - len(stripped)
        if stripped.strip() and indent > best_indent:
            best, best_indent = offset + indent, indent
        offset += len(line)
    return best
