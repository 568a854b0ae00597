"""The gateway: an OpenAI-compatible router from public model names to instance UIDs."""
