"""``/platform`` and ``/quit``: a whole platform at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from pydistem.coordinator.routes import coordinator
from pydistem.coordinator.service import Coordinator

router = APIRouter(tags=["platform"])
C = Annotated[Coordinator, Depends(coordinator)]


@router.get("/platform")
def platform_show(c: C) -> dict[str, Any]:
    return c.platform()


@router.post("/platform")
def platform_deploy(c: C, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    vnets, vnodes = c.deploy(body)
    return {
        "vnetworks": [v.model_dump() for v in vnets],
        "vnodes": [c.vnode_dict(v) for v in vnodes],
    }


@router.post("/quit")
def quit_platform(c: C) -> dict[str, Any]:
    return {"removed": c.quit()}
