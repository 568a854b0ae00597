"""The exception hierarchy the CLI maps onto exit codes (2 bad input, 3 remote failure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# `scheme://user:password@` in a URL: the part to hide wherever xpool prints text.
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@")


def redact_userinfo(text: str) -> str:
    """`s3://key:secret@bucket` -> `s3://***@bucket`: error lines never carry a credential."""
    return _USERINFO.sub(r"\1***@", text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with user input, located as precisely as we can."""

    where: str  # "FILE:LINE:COL", a file name, or an object name
    path: str  # dotted field path, e.g. "spec.models[0].tier"; may be empty
    message: str  # what is wrong and what to do

    def __str__(self) -> str:
        field = f" {self.path}:" if self.path else ""
        return redact_userinfo(f"{self.where}:{field} {self.message}")


class XpoolError(Exception):
    """Base of every error xpool reports to a user as text, never as a traceback."""

    exit_code = 1


class InputError(XpoolError):
    """Bad input (platform file, flags): nothing was changed anywhere."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(where="xpool", path="", message=problems)]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RemoteError(XpoolError):
    """A remote system (Kubernetes, Xinference, Prometheus) still failed after retries."""

    exit_code = 3
