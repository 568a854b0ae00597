"""The embedded default: a local Xinference, built-in local models, `xpool up` plumbing."""
