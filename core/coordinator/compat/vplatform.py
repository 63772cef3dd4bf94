"""Distem's ``POST /vplatform`` (and ``POST /``): build the platform a saved
``GET /vplatform`` document (``distem --save-config``) describes.

Everything is translated and checked first (nothing changes on bad input); then the
saved pnodes are initialised (idempotent), the vnetworks and the vnodes created in
one all-or-nothing step each, the vroutes created, and the vnodes saved as
``RUNNING`` (or ``FROZEN``) started (with their routes). The answer is the whole
platform, as ``GET /vplatform`` shows it.
"""

from __future__ import annotations

import json
from typing import Any

from pydistem.coordinator import vroutes
from pydistem.coordinator.compat import shapes
from pydistem.coordinator.compat.encoding import (
    DistemError,
    downkeys,
    invalid,
    not_implemented,
)
from pydistem.coordinator.compat.router import Form, _check, _name, _route, vplatform_info
from pydistem.coordinator.service import Coordinator
from pydistem.errors import PydistemError
from pydistem.model.specs import VNetwork, VNode
from pydistem.model.validate import parse

#: saved vnode status -> what to do after creation
_STATUS = {
    "RUNNING": "start",
    "CONFIGURING": "start",
    "FROZEN": "freeze",
    "INIT": None,
    "DOWN": None,
    "READY": None,
    "FAILED": None,
}


def _objects(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The saved objects of ``vplatform.<key>`` (an object keyed by name, or a list)."""
    value = doc.get(key) or {}
    items = list(value.values()) if isinstance(value, dict) else value
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise invalid(f"data: vplatform.{key} must be an object of {key}")
    return items


def _vroutes(net: dict[str, Any], i: int) -> list[dict[str, str]]:
    """The saved vroutes of one vnetwork (keyed by destination CIDR, or a list) as
    ``{source, destination, gateway}``; a missing ``networksrc`` is this vnetwork."""
    raw = net.get("vroutes") or {}
    items = list(raw.values()) if isinstance(raw, dict) else raw
    out = []
    for j, r in enumerate(items if isinstance(items, list) else [None]):
        field = f"data: vnetworks[{i}].vroutes[{j}]"
        if not isinstance(r, dict) or not r.get("networkdst") or not r.get("gateway"):
            raise invalid(f"{field}: a vroute {{networksrc, networkdst, gateway}}")
        src = _name(str(r.get("networksrc") or net["name"]))
        out.append({"source": src, "destination": _name(str(r["networkdst"])),
                    "gateway": str(r["gateway"])})  # fmt: skip
    return out


def _check_vroutes(
    c: Coordinator, routes: list[dict[str, str]], vnets: list[dict], vnodes: list[dict]
) -> None:
    """Check the saved vroutes against the platform to be built (nothing built yet)."""
    if not routes:
        return
    nets = {**c.vnets, **{d["name"]: parse(VNetwork, d, "data.vnetworks") for d in vnets}}
    planned = [parse(VNode, d, "data.vnodes") for d in vnodes]
    vroutes.check(routes, nets, [*c.vnodes.values(), *planned])


def _plan(
    c: Coordinator, doc: Any
) -> tuple[list[str], list[dict], list[dict], dict[str, str], list[dict[str, str]]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("vplatform", {}), dict):
        raise invalid('data: a JSON document {"vplatform": {"vnetworks": ..., "vnodes": ...}}')
    platform = doc.get("vplatform") or {}
    pnodes = [str(p.get("address")) for p in _objects(platform, "pnodes") if p.get("address")]
    vnets, routes = [], []
    for i, raw in enumerate(_objects(platform, "vnetworks")):
        net = downkeys(raw)
        if not net.get("name"):
            raise invalid(f"data: vnetworks[{i}] has no name")
        vnets.append(
            shapes.vnetwork_desc(_name(str(net["name"])), net.get("address"), net.get("opts"))
        )
        routes.extend(_vroutes(net, i))
    vnodes, after = [], {}
    for i, raw in enumerate(_objects(platform, "vnodes")):
        desc = downkeys(raw)
        if not desc.get("name"):
            raise invalid(f"data: vnodes[{i}] has no name")
        name = _name(str(desc["name"]))
        status = str(desc.get("status") or "INIT").upper()
        if status not in _STATUS:
            raise invalid(f"data: vnodes[{i}].status {status!r} is not a vnode status")
        if _STATUS[status]:
            after[name] = str(_STATUS[status])
        vnodes.append(shapes.vnode_desc(name, desc, None))
    _check_vroutes(c, routes, vnets, vnodes)
    return pnodes, vnets, vnodes, after, routes


def _load_json(c: Coordinator, text: str) -> None:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise DistemError(400, "ParserError", f"data: {exc}") from None
    pnodes, vnets, vnodes, after, routes = _plan(c, doc)
    c.pnode_init(pnodes) if pnodes else None
    made: list[str] = []
    try:
        for net in vnets:
            made.append(c.vnetwork_create(net).name)
        created = c.vnodes_create(vnodes, prefix="vnodes")
    except PydistemError:
        for name in reversed(made):
            c.vnetwork_remove(name)
        raise
    try:  # before the starts: they install the routes (and forwarding in the gateways)
        for r in routes:
            c.vroute_create(r["source"], r["destination"], r["gateway"])
    except PydistemError:
        c.vnodes_remove([v.name for v in created])
        for name in reversed(made):
            c.vnetwork_remove(name)
        raise
    start = [n for n in after]
    if start:
        _check(c.vnodes_start(start))
    frozen = [n for n, what in after.items() if what == "freeze"]
    if frozen:
        _check(c.vnodes_freeze(frozen))


def _create(c: Coordinator, form: Form) -> str:
    fmt = (form.get("format") or "JSON").upper()
    if fmt == "SIMGRID":
        raise not_implemented("vplatform format SIMGRID", "load a JSON vplatform instead")
    if fmt != "JSON":
        raise invalid(f"format: {fmt!r} is not JSON or SIMGRID")
    data = form.get("data")
    if data is None:
        raise invalid("data: the vplatform document (JSON text) is required")
    _load_json(c, data)
    return vplatform_info(c, {})


@_route("POST", "/vplatform")
def vplatform_create(c: Coordinator, form: Form) -> str:
    return _create(c, form)


@_route("POST", "/")
def vplatform_create_root(c: Coordinator, form: Form) -> str:
    return _create(c, form)
