"""Contract tests: a real HTTP server implementing the Kubernetes API semantics xpool relies on."""
