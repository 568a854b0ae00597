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
    with_urls: list[tuple[_Link, str]] = []
    _collect_urls(platform, None, with_urls)
    for link, text in with_urls:
        why = next((w for w in map(_url_credential, _URL.findall(text)) if w), None)
        if why is not None:
            yield _path(link), why
    client_keys = platform.spec.gateway.api_keys_env
    if client_keys is not None and client_keys == platform.spec.xinference.api_key_env:
        # a client holding the Xinference key could call Xinference past the gateway
        yield (
            ("spec", "gateway", "apiKeysEnv"),
            f"{client_keys} also holds the Xinference API key (spec.xinference.apiKeyEnv); "
            "give the clients' keys a variable of their own",
        )


def _url_credential(url: str) -> str | None:
    """What credential `url` carries, told without its value; None when it carries none
    (a large platform's thousands of source URLs: nothing redacted for them)."""
    if _USERINFO.match(url):
        return (
            f"the URL '{redact_credentials(url)}' carries credentials (user:password@); "
            f"remove them and {_ADVICE}"
        )
    query = url.partition("?")[2].partition("#")[0]
    names = [unquote(p.partition("=")[0]) for p in re.split(r"[&;]", query) if "=" in p]
    found = [n for n in names if n.lower() in CREDENTIAL_PARAMS]
    if not found:
        return None
    return (
        f"the URL '{redact_credentials(url)}' carries a credential in its query "
        f"({', '.join(found)}); a pre-signed or tokened URL ends up in the platform "
        f"ConfigMap: remove the query and {_ADVICE}"
    )


# A path built only for the strings that hold a URL: (parent link, key) pairs. A large
# platform has hundreds of thousands of strings and numbers; a tuple per value, or a
# generator per level, made this check a tenth of loading it.
_Link = tuple[Any, PathElem] | None
_SCALARS = (int, float, bool, type(None))


def _collect_urls(value: Any, link: _Link, out: list[tuple[_Link, str]]) -> None:
    """Append every string inside a loaded model that holds `://`, with its link."""
    if isinstance(value, str):
        if "://" in value:
            out.append((link, value))
    elif isinstance(value, _SCALARS):
        return
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            _collect_urls(getattr(value, name), (link, field.alias or name), out)
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect_urls(item, (link, str(key)), out)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _collect_urls(item, (link, i), out)


def _path(link: _Link) -> tuple[PathElem, ...]:
    """The path as spelled in the file."""
    keys: list[PathElem] = []
    while link is not None:
        link, key = link
        keys.append(key)
    return tuple(reversed(keys))
