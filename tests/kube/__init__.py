"""`xpool apply` and `xpool diff` against the Kubernetes contract test server."""
