"""xpool: a control plane for pooled LLM serving on Kubernetes."""
