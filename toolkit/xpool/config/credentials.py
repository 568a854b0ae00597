"""No credentials in the platform file: it is stored in a ConfigMap and printed in errors.

A URL with userinfo (`s3://key:secret@bucket`, `http://user:pass@host`) or with a credential
in its query (a pre-signed `?X-Amz-Signature=...`, `?sig=...`, `?token=...`,
`?password=...`: errors.CREDENTIAL_PARAMS) would put the secret in every copy of the file.
Every string of the loaded platform is searched for URLs, notes and other free text as well
as URL fields, so a field added later is covered too; the message shows the URL with the
credential hidden. The gateway's client keys and the Xinference key live in separate
variables, so no client holds the latter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel

from xpool.config.models import Platform
from xpool.config.positions import PathElem
from xpool.errors import CREDENTIAL_PARAMS, USERINFO, redact_credentials

Found = tuple[tuple[PathElem, ...], str]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://" + USERINFO)
_ADVICE = "give it through the environment or a Kubernetes Secret instead"


def credential_problems(platform: Platform) -> Iterator[Found]:
    for path, text in _strings(platform, ()):
        why = next((w for w in map(_url_credential, _URL.findall(text)) if w), None)
        if why is not None:
            yield path, why
    client_keys = platform.spec.gateway.api_keys_env
    if client_keys is not None and client_keys == platform.spec.xinference.api_key_env:
        # a client holding the Xinference key could call Xinference past the gateway
        yield (
            ("spec", "gateway", "apiKeysEnv"),
            f"{client_keys} also holds the Xinference API key (spec.xinference.apiKeyEnv); "
            "give the clients' keys a variable of their own",
        )


def _url_credential(url: str) -> str | None:
    """What credential `url` carries, told without its value; None when it carries none."""
    shown = redact_credentials(url)
    if _USERINFO.match(url):
        return f"the URL '{shown}' carries credentials (user:password@); remove them and {_ADVICE}"
    query = url.partition("?")[2].partition("#")[0]
    names = [unquote(p.partition("=")[0]) for p in re.split(r"[&;]", query) if "=" in p]
    found = [n for n in names if n.lower() in CREDENTIAL_PARAMS]
    if not found:
        return None
    return (
        f"the URL '{shown}' carries a credential in its query ({', '.join(found)}); a "
        f"pre-signed or tokened URL ends up in the platform ConfigMap: remove the query and "
        f"{_ADVICE}"
    )


def _strings(value: Any, path: tuple[PathElem, ...]) -> Iterator[tuple[tuple[PathElem, ...], str]]:
    """Every string inside a loaded model, with its path as spelled in the file."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            yield from _strings(getattr(value, name), (*path, field.alias or name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))
