"""REST routes of the coordinator, one module per resource."""

from __future__ import annotations

from fastapi import Request

from pydistem.coordinator.service import Coordinator


def coordinator(request: Request) -> Coordinator:
    """The Coordinator behind the app (FastAPI dependency)."""
    return request.app.state.coordinator  # type: ignore[no-any-return]
