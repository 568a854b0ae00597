"""The batch and file objects of OpenAI's API, their statuses and list pages.

A batch moves validating -> in_progress -> finalizing -> completed; cancel moves validating or
in_progress to cancelling, then cancelled once the requests in flight are back; the
completion window running out moves in_progress (or cancelling) to expired. Each move stamps
its `<status>_at`. `failed` is OpenAI's status for a batch refused after creation: here input
problems are refused before anything is stored (400), so no batch reaches it today.
"""

from __future__ import annotations

from typing import Any

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
FINAL = ("completed", "failed", "expired", "cancelled")
MOVES: dict[str, tuple[str, ...]] = {
    "validating": ("in_progress", "failed", "cancelling"),
    "in_progress": ("finalizing", "cancelling", "expired"),
    "finalizing": ("completed", "expired"),
    "cancelling": ("cancelled", "expired"),
}
WINDOWS = {"24h": 24 * 3600}  # completion_window values OpenAI accepts, in seconds
DEFAULT_PAGE, MAX_PAGE = 20, 100  # batches; files list up to FILES_PAGE at once
FILES_PAGE = 10_000


def new_batch(
    batch_id: str,
    *,
    input_file_id: str,
    endpoint: str,
    window: str,
    metadata: dict[str, str] | None,
    model: str | None,
    total: int,
    now: int,
) -> dict[str, Any]:
    """A batch just accepted: validating, its request counts all to do."""
    return {
        "id": batch_id,
        "object": "batch",
        "endpoint": endpoint,
        "model": model,
        "errors": None,
        "input_file_id": input_file_id,
        "completion_window": window,
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + WINDOWS[window],
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": total, "completed": 0, "failed": 0},
        "metadata": metadata,
    }


def moved(batch: dict[str, Any], status: str, now: int) -> dict[str, Any]:
    """`batch` in `status`, stamped; ValueError for a move its status does not allow."""
    if status not in MOVES.get(batch["status"], ()):
        raise ValueError(f"batch {batch['id']} is {batch['status']}; it cannot become {status}")
    return {**batch, "status": status, f"{status}_at": now}


def file_object(
    file_id: str, *, filename: str, size: int, purpose: str, now: int
) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": now,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


def page(items: list[dict[str, Any]], *, after: str | None, limit: int) -> dict[str, Any]:
    """OpenAI's cursor page over `items` (newest first): the `limit` items after the one
    whose id is `after` (from the start when `after` is unknown or None)."""
    start = 0
    if after is not None:
        ids = [item["id"] for item in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    data = items[start : start + limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + limit < len(items),
    }


def page_limit(raw: str | None, default: int = DEFAULT_PAGE, most: int = MAX_PAGE) -> int | None:
    """The `limit` query parameter (1..`most`, else `default`), or None when it is not one."""
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= most:
        return None
    return int(raw)
