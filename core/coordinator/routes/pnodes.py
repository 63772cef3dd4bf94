"""``/pnodes``: physical nodes and their agents; ``/probes``: what they sample."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from pydistem.coordinator import networks, probes
from pydistem.coordinator.routes import coordinator
from pydistem.coordinator.service import Coordinator
from pydistem.errors import NotFound, ValidationError

router = APIRouter(tags=["pnodes"])
C = Annotated[Coordinator, Depends(coordinator)]


@router.get("/pnodes")
def pnodes_list(c: C) -> list[dict[str, Any]]:
    return [p.model_dump() for p in c.pnodes.values()]


@router.post("/pnodes")
def pnodes_init(c: C, body: Annotated[dict[str, Any], Body()]) -> list[dict[str, Any]]:
    targets = body.get("targets")
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets:
        raise ValidationError("targets", "a non-empty list of pnode hostnames or addresses")
    return [p.model_dump() for p in c.pnode_init(targets)]


@router.post("/pnodes/probe")
def pnodes_probe(c: C, body: Annotated[dict[str, Any], Body()]) -> dict[str, str | None]:
    """Can each pnode's ``interface`` carry classic vnetworks? pnode -> None or why not."""
    iface = body.get("interface")
    if not isinstance(iface, str) or not iface:
        raise ValidationError("interface", "the uplink interface to probe, e.g. eth1")
    return networks.probe_uplinks(c, iface, force=True)


@router.post("/probes")
def probes_launch(c: C, body: Annotated[Any, Body()]) -> list[dict[str, Any]]:
    """Start probes on every pnode: ``{"probes": [{"type", "frequency", "name",
    "interface"}]}`` (or the list alone)."""
    desc = body.get("probes") if isinstance(body, dict) and "probes" in body else body
    return [p.model_dump() for p in probes.launch(c, desc)]


@router.put("/probes")
def probes_state(c: C, body: Annotated[dict[str, Any], Body()]) -> dict[str, bool]:
    state = body.get("state")
    if state not in ("stop", "restart"):
        raise ValidationError("state", f"{state!r} is not stop or restart")
    probes.set_state(c, state)
    return {"ok": True}


@router.delete("/probes")
def probes_delete(c: C) -> dict[str, bool]:
    probes.delete(c)
    return {"ok": True}


@router.get("/probes")
def probes_data(c: C) -> dict[str, Any]:
    return probes.data(c)


@router.get("/pnodes/{pnode}")
def pnode_show(c: C, pnode: str) -> dict[str, Any]:
    try:
        pid = c.resolve_pnode(pnode)
        return c.pnodes[pid].model_dump()
    except (ValidationError, KeyError):
        raise NotFound("pnode", pnode) from None
