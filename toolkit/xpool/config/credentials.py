"""No credentials in the platform file: it is stored in a ConfigMap and printed in errors.

A URL with userinfo (`s3://key:secret@bucket`, `http://user:pass@host`) would put the secret
in every copy of the file. Every string of the loaded platform is checked, so a URL field
added later is covered too; the message shows the URL with the userinfo hidden. The gateway's
client keys and the Xinference key live in separate variables, so no client holds the latter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from xpool.config.models import Platform
from xpool.config.positions import PathElem
from xpool.errors import USERINFO, redact_userinfo

Found = tuple[tuple[PathElem, ...], str]

_URL_WITH_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://" + USERINFO)


def credential_problems(platform: Platform) -> Iterator[Found]:
    for path, text in _strings(platform, ()):
        if _URL_WITH_USERINFO.match(text):
            yield (
                path,
                f"the URL '{redact_userinfo(text)}' carries credentials (user:password@); "
                "remove them and give them through the environment or a Kubernetes Secret",
            )
    client_keys = platform.spec.gateway.api_keys_env
    if client_keys is not None and client_keys == platform.spec.xinference.api_key_env:
        # a client holding the Xinference key could call Xinference past the gateway
        yield (
            ("spec", "gateway", "apiKeysEnv"),
            f"{client_keys} also holds the Xinference API key (spec.xinference.apiKeyEnv); "
            "give the clients' keys a variable of their own",
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
