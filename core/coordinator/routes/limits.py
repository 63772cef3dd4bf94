"""``/vnodes/{name}/cpu``, ``/vnodes/{name}/memory`` and ``/vnodes/{name}/disk``: CPU,
memory and disk limits of a vnode.

POST creates (400 ``already_exists`` if set), PUT changes the given fields, DELETE lifts
the limit, GET reads it (404 when none). Changes apply live to a running vnode.
``PUT /vnodes/{name}/disk`` replaces the disk throttles (an object or a list).
``GET /vnodes/{name}/limits`` adds the cores held, the pnode's CPU and the usage.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from pydistem.coordinator import limits
from pydistem.coordinator.routes import coordinator
from pydistem.coordinator.service import Coordinator

router = APIRouter(tags=["limits"])
C = Annotated[Coordinator, Depends(coordinator)]
Doc = Annotated[Any, Body()]


@router.get("/vnodes/{name}/cpu")
def vcpu_info(c: C, name: str) -> dict[str, Any]:
    return limits.vcpu_info(c, name).model_dump()


@router.post("/vnodes/{name}/cpu")
def vcpu_create(c: C, name: str, body: Doc) -> dict[str, Any]:
    return limits.vcpu_create(c, name, body).model_dump()


@router.put("/vnodes/{name}/cpu")
def vcpu_update(c: C, name: str, body: Doc) -> dict[str, Any]:
    return limits.vcpu_update(c, name, body).model_dump()


@router.delete("/vnodes/{name}/cpu")
def vcpu_remove(c: C, name: str) -> dict[str, Any]:
    return limits.vcpu_remove(c, name).model_dump()


@router.get("/vnodes/{name}/memory")
def vmem_info(c: C, name: str) -> dict[str, Any]:
    return limits.vmem_info(c, name).model_dump()


@router.post("/vnodes/{name}/memory")
def vmem_create(c: C, name: str, body: Doc) -> dict[str, Any]:
    return limits.vmem_create(c, name, body).model_dump()


@router.put("/vnodes/{name}/memory")
def vmem_update(c: C, name: str, body: Doc) -> dict[str, Any]:
    return limits.vmem_update(c, name, body).model_dump()


@router.delete("/vnodes/{name}/memory")
def vmem_remove(c: C, name: str) -> dict[str, Any]:
    return limits.vmem_remove(c, name).model_dump()


@router.get("/vnodes/{name}/disk")
def vdisk_info(c: C, name: str) -> list[dict[str, Any]]:
    return [t.model_dump() for t in limits.vdisk_info(c, name)]


@router.put("/vnodes/{name}/disk")
def vdisk_set(c: C, name: str, body: Doc) -> list[dict[str, Any]]:
    return [t.model_dump() for t in limits.vdisk_set(c, name, body)]


@router.delete("/vnodes/{name}/disk")
def vdisk_remove(c: C, name: str) -> list[dict[str, Any]]:
    return [t.model_dump() for t in limits.vdisk_remove(c, name)]


@router.get("/vnodes/{name}/limits")
def limits_info(c: C, name: str) -> dict[str, Any]:
    return limits.limits_info(c, name)
