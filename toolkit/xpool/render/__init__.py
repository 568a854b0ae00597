"""Rendering: Kubernetes objects, Volcano queues and jobs, and Xinference launch specs.

Pure (no I/O besides the packaged templates and policies); see docs/scheduling.md.
"""

from xpool.render.render import (
    RenderedObject,
    RenderError,
    Rendering,
    render_platform,
    validate_volcano,
)

__all__ = ["RenderError", "RenderedObject", "Rendering", "render_platform", "validate_volcano"]
