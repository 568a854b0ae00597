"""The exception hierarchy the CLI maps onto exit codes (2 bad input, 3 remote failure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# `scheme://user@` or `scheme://user:password@` in a URL: the part to hide wherever xpool
# prints text. A password may hold `/` and quotes (AWS secret keys hold `/`), a user not, so
# that `hf://org/name@revision` stays as it is.
USERINFO = r"(?:[^/\s@'\"]+|[^/\s@'\":]+:[^\s@]+)@"
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)" + USERINFO)
# Query parameters that carry a credential: pre-signed URLs (S3, GCS, Azure SAS) and links
# with a token or password. Their values are hidden like a password, up to the next
# parameter or a space; a quote ends a value only where a quoted URL ends (before a space,
# `)`, `,`, `:` or the end), since a password may hold one.
CREDENTIAL_PARAMS = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "sig",
        "signature",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "auth",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "api_key",
        "apikey",
        "api-key",
    }
)
_QUERY_CREDENTIAL = re.compile(
    r"([?&;](?:"
    + "|".join(sorted(map(re.escape, CREDENTIAL_PARAMS)))
    + r")=)(?:[^&;#\s'\"]|['\"](?![\s),:]|$))*",
    re.IGNORECASE,
)
# Control characters would act on the terminal (escape sequences) or split an error line
# (CR, LF inside a value): shown escaped.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def redact_credentials(text: str) -> str:
    """`s3://key:secret@bucket` -> `s3://***@bucket`, `?X-Amz-Signature=abc` ->
    `?X-Amz-Signature=***`: error lines never carry a credential."""
    return _QUERY_CREDENTIAL.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


def printable(text: str) -> str:
    """`text` with its control characters escaped (`\\x1b`), so one message is one line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with user input, located as precisely as we can."""

    where: str  # "FILE:LINE:COL", a file name, or an object name
    path: str  # dotted field path, e.g. "spec.models[0].tier"; may be empty
    message: str  # what is wrong and what to do

    def __str__(self) -> str:
        field = f" {self.path}:" if self.path else ""
        return printable(redact_credentials(f"{self.where}:{field} {self.message}"))


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
