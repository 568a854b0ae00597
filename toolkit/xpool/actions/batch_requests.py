"""The request file of `xpool batch submit`, checked and completed before it is uploaded.

OpenAI's Batch API wants every line to name its `method`, `url` and `body.model`; the CLI
fills in what a line leaves out from the command's MODEL and endpoint, so a file of bare
`{"custom_id", "body"}` lines works. A line that names another model or endpoint is the
user's mistake and stops the upload (FILE:LINE:COL, exit 2, nothing sent). A line that is not
a JSON object is sent unchanged: the gateway puts it in the batch's error file, as OpenAI
does, and the CLI says so up front.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from xpool.errors import InputError, Problem

ENDPOINTS = {
    "llm": "/v1/chat/completions",
    "embedding": "/v1/embeddings",
}
BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")


@dataclass(frozen=True)
class PreparedRequests:
    content: bytes  # the JSONL to upload
    lines: int  # request lines (blank lines dropped)
    unparsable: tuple[int, ...]  # line numbers the gateway will put in the error file


def default_endpoint(model_type: str) -> str | None:
    """The endpoint a batch for this model type goes to; None when the Batch API has none."""
    return ENDPOINTS.get(model_type)


def prepare_requests(where: str, text: str, model: str, endpoint: str) -> PreparedRequests:
    """`text` with each object line's `method`, `url` and `body.model` filled in; InputError
    naming every line that contradicts MODEL or the endpoint."""
    out: list[str] = []
    unparsable: list[int] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        if not isinstance(request, dict) or not isinstance(request.get("body", {}), dict):
            unparsable.append(number)
            out.append(line)
            continue
        problem = _complete(request, model, endpoint)
        if problem:
            problems.append(Problem(f"{where}:{number}:1", "", problem))
        out.append(json.dumps(request, ensure_ascii=False, separators=(",", ":")))
    if problems:
        raise InputError(problems)
    if not out:
        raise InputError([Problem(where, "", "no request lines; give one JSON object per line")])
    content = ("\n".join(out) + "\n").encode()
    return PreparedRequests(content, len(out), tuple(unparsable))


def _complete(request: dict, model: str, endpoint: str) -> str | None:
    """Fill in the missing fields of one request; the contradiction, if any."""
    body = request.setdefault("body", {})
    named = body.setdefault("model", model)
    if named != model:
        return f"body.model is {named!r}, but this batch is for {model!r}; one model per batch"
    url = request.setdefault("url", endpoint)
    if url != endpoint:
        return f"url is {url!r}, but this batch goes to {endpoint}; one endpoint per batch"
    method = request.setdefault("method", "POST")
    if method != "POST":
        return f"method is {method!r}; the Batch API sends POST requests only"
    return None
