"""The batch backlog as demand: queued lines and their tokens, per model.

The reconciler reads these from the gateway's gauges (`xpool_gateway_batch_queued_requests`,
`xpool_gateway_batch_queued_tokens`) to scale the lowest tier into idle capacity. The tokens
are an estimate made before anything ran, without a tokenizer: the prompt as the body's JSON
size / 4 (about four bytes per token of English text, and the JSON syntax around it
overestimates a little), plus the completion the body asks for at most (`max_tokens` or
`max_completion_tokens`; none asked counts as DEFAULT_COMPLETION). Embeddings have no
completion.
"""

from __future__ import annotations

import json
from typing import Any

BYTES_PER_TOKEN = 4
DEFAULT_COMPLETION = 256  # tokens, for a chat or completion line that sets no maximum


def line_tokens(endpoint: str, body: dict[str, Any]) -> int:
    """Estimated prompt + completion tokens of one request line (see the module)."""
    prompt = max(1, len(json.dumps(body, separators=(",", ":"))) // BYTES_PER_TOKEN)
    if endpoint == "/v1/embeddings":
        return prompt
    asked = body.get("max_completion_tokens", body.get("max_tokens"))
    completion = asked if isinstance(asked, int) and asked >= 0 else DEFAULT_COMPLETION
    return prompt + completion
