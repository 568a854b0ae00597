"""Adapters: the only code that talks to remote systems (Kubernetes, Xinference, Prometheus).

The pure packages (config, catalog, capacity, render, policy, sim) never import from here; an
import-linter contract in pyproject.toml enforces it.
"""
