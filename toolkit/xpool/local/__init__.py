"""The embedded default, and its own I/O only (processes, files, loopback HTTP): a local
Xinference and Prometheus, built-in local models, the up state a running `xpool up` leaves,
and clients of its gateway (the admin API, the smoke requests)."""
