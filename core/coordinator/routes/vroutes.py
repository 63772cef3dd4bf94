"""``/vnetworks/{name}/routes``, ``/vnetworks/routes/complete``, ``/vroutes``: routes
between vnetworks through gateway vnodes (see core/coordinator/vroutes.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from pydistem.coordinator.routes import coordinator
from pydistem.coordinator.service import Coordinator

router = APIRouter(tags=["vroutes"])
C = Annotated[Coordinator, Depends(coordinator)]


@router.get("/vroutes")
def vroutes_list(c: C) -> list[dict[str, Any]]:
    return [r.model_dump() for r in c.vroutes.values()]


@router.post("/vnetworks/routes/complete")
def vroute_complete(c: C) -> list[dict[str, Any]]:
    return [r.model_dump() for r in c.vroute_complete()]


@router.post("/vnetworks/{name}/routes")
def vroute_create(c: C, name: str, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return c.vroute_create(name, body.get("destination"), body.get("gateway")).model_dump()  # type: ignore[arg-type]
