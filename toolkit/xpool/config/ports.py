"""Ports in `host:port` addresses and URLs, as sockets, clients and Services accept them.

The schema's patterns let five digits (or, in a URL, any text) through after the colon, which
fails only once a server binds, a client connects or the API server sees the Service.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_PORT = 65535


def listen_port(address: str) -> str:
    """`host:port` with a port of 0..65535 (0: any free port, which only `xpool up` can use)."""
    port = int(address.rpartition(":")[2])
    if port > MAX_PORT:
        raise ValueError(f"port {port} is above {MAX_PORT}; give a port 1-{MAX_PORT}")
    return address


def url_port(url: str) -> str:
    """A URL whose port, when it names one, is a number 1..65535."""
    try:
        port = urlsplit(url).port
    except ValueError:  # not a number, or above 65535
        port = -1
    if port is not None and not 1 <= port <= MAX_PORT:
        text = urlsplit(url).netloc.rpartition(":")[2]
        raise ValueError(f"port '{text}' is not a number 1-{MAX_PORT}; fix the port or omit it")
    return url
