"""The form of each version's `source`, checked where it is written.

The schema lets any text follow `hf://`, `s3://` or `file://`; `s3:///x` (no bucket),
`hf://Qwen` (no repository) or `file://../models` (a relative path, which Xinference cannot
read) would otherwise pass validate and fail only when a model is launched or checked.
"""

from __future__ import annotations

import re

_HUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[^@\s/]+)?$")
# S3 bucket names: 3-63 lower-case letters, digits, '.' and '-', starting and ending with a
# letter or digit (MinIO follows the same rule).
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def source_problem(source: str) -> str | None:
    """What is wrong with the form of `source`, with the form to use; None when it is right."""
    scheme, _, rest = source.partition("://")
    if scheme in ("hf", "modelscope") and not _HUB_REPO.match(rest):
        return (
            f"a {scheme}:// source names a repository as ORG/NAME, optionally @REVISION: "
            f"e.g. {scheme}://Qwen/Qwen2.5-7B-Instruct"
        )
    # userinfo (`s3://key:secret@bucket`) is refused by config/credentials.py on its own
    if scheme == "s3" and not _S3_BUCKET.match(rest.partition("/")[0].rpartition("@")[2]):
        return (
            "an s3:// source names a bucket (3-63 lower-case letters, digits, '.' or '-') "
            "and a prefix: s3://BUCKET/PREFIX"
        )
    if scheme == "file" and not rest.startswith("/"):
        return (
            "a file:// source is an absolute path, as Xinference reads it on the worker: "
            "file:///PATH (three slashes)"
        )
    return None
