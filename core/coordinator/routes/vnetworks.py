"""``/vnetworks``: virtual networks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from pydistem.coordinator.routes import coordinator
from pydistem.coordinator.service import Coordinator

router = APIRouter(tags=["vnetworks"])
C = Annotated[Coordinator, Depends(coordinator)]


@router.get("/vnetworks")
def vnetworks_list(c: C) -> list[dict[str, Any]]:
    return [v.model_dump() for v in c.vnets.values()]


@router.post("/vnetworks")
def vnetwork_create(c: C, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return c.vnetwork_create(body).model_dump()


@router.get("/vnetworks/{name}")
def vnetwork_show(c: C, name: str) -> dict[str, Any]:
    return c.vnetwork_get(name).model_dump()


@router.delete("/vnetworks/{name}")
def vnetwork_remove(c: C, name: str) -> dict[str, Any]:
    return c.vnetwork_remove(name).model_dump()
