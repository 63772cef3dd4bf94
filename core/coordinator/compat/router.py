"""Distem 1.4's coordinator routes (no prefix), each translated to one Coordinator method.

Every handler reads the form body, runs in the thread pool (Coordinator calls block),
and answers 200 with JSON, or Distem's error convention (see :mod:`.encoding`).
Features not served yet answer 501 ``NotImplementedError`` naming the feature.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from pydistem.coordinator.compat import shapes, vupdate
from pydistem.coordinator.compat.encoding import (
    DistemError,
    as_number,
    downkeys,
    error_response,
    invalid,
    json_field,
    json_or_string,
    names_list,
    not_found,
    not_implemented,
    parse_form,
    translate,
)
from pydistem.coordinator.service import Coordinator
from pydistem.errors import PydistemError
from pydistem.model.specs import VIface, VNetwork, VNode

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
Form = dict[str, str | None]


def allowed(host: str | None, allow: list[str]) -> bool:
    """Whether the client address ``host`` lies in one of the CIDRs of ``allow``."""
    try:
        addr = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(cidr, strict=False) for cidr in allow)


async def _serve(request: Request, handler: Callable[[Coordinator, Form], Any]) -> Response:
    """Check the caller, decode the form, run ``handler``; answer the Distem way."""
    host = request.client.host if request.client else None
    log.info("distem-compat %s %s from %s", request.method, request.url.path, host)
    allow = getattr(request.app.state, "distem_compat_allow", ["127.0.0.0/8", "::1/128"])
    if not allowed(host, allow):
        log.warning("distem-compat: refused %s (not in %s)", host, ",".join(allow))
        err = DistemError(403, "ForbiddenError", f"{host} is not in --distem-compat-allow")
        return error_response(err)
    c: Coordinator = request.app.state.coordinator
    try:
        form = parse_form(await request.body()) if request.method in ("POST", "PUT") else {}
        result = await run_in_threadpool(handler, c, form)
    except DistemError as exc:
        return error_response(exc)
    except PydistemError as exc:
        return error_response(translate(exc))
    if isinstance(result, Response):  # a file (the vnode filesystem image)
        return result
    if isinstance(result, str):
        return Response(result, media_type="application/json;charset=utf-8")
    return Response(json.dumps(result, indent=2), media_type="application/json;charset=utf-8")


def _route(method: str, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``handler(c, form, **path_params)`` at Distem's ``method path``."""

    def deco(handler: Callable[..., Any]) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            params = {k: _name(v) for k, v in request.path_params.items()}
            return await _serve(request, lambda c, form: handler(c, form, **params))

        endpoint.__name__ = f"distem_{handler.__name__}"
        router.add_api_route(path, endpoint, methods=[method])
        if path != "/":  # python-distem (PyPI) asks for /pnodes/, /vnodes/x/commands/, ...
            router.add_api_route(path + "/", endpoint, methods=[method])
        return handler

    return deco


def _name(segment: str) -> str:
    """A path name as Distem reads it: CGI-unescaped (``+`` is a space), spaces as ``_``."""
    return segment.replace("+", " ").replace(" ", "_")


def _desc(form: Form, key: str = "desc") -> dict[str, Any]:
    desc = downkeys(json_field(form, key, {}))
    if not isinstance(desc, dict):
        raise invalid(f"{key}: a JSON object")
    return desc


# ---------------------------------------------------------------------------- shapes
def _vnode(c: Coordinator, v: VNode) -> dict[str, Any]:
    index = list(c.vnodes).index(v.name) if v.name in c.vnodes else len(c.vnodes)
    return shapes.vnode(v, index, c.vnets, c.pnodes)


def _vnetwork(c: Coordinator, v: VNetwork) -> dict[str, Any]:
    return shapes.vnetwork(v, c.vnodes, c.vroutes.values(), c.vnets)


def _pnodes(c: Coordinator, status: str | None = None) -> dict[str, Any]:
    return {p.address: shapes.pnode(p, i, status) for i, p in enumerate(c.pnodes.values())}


def _get_vnode(c: Coordinator, name: str) -> VNode:
    v = c.vnodes.get(name)
    if v is None:
        raise not_found(f"vnode {name}")
    return v


def _get_viface(c: Coordinator, vnode: str, name: str) -> tuple[VNode, int, VIface]:
    v = _get_vnode(c, vnode)
    for i, vif in enumerate(v.vifaces):
        if vif.name == name:
            return v, i, vif
    raise not_found(f"viface {name} of vnode {vnode}")


def _check(results: dict[str, str | None]) -> None:
    """Raise ShellError (500) naming every vnode the operation failed on."""
    failed = {n: e for n, e in results.items() if e}
    if failed:
        text = "; ".join(f"{n}: {e}" for n, e in failed.items())
        raise DistemError(500, "ShellError", text)


# ---------------------------------------------------------------------------- pnodes
@_route("POST", "/pnodes")
def pnodes_init(c: Coordinator, form: Form) -> list[dict[str, Any]]:
    json_field(form, "desc", {})  # max_vifaces, algorithms: accepted, not used (bad JSON: 400)
    target = json_or_string(form, "target")
    targets = names_list(target, "target") if target is not None else ["localhost"]
    done = c.pnode_init(targets or ["localhost"])
    order = list(c.pnodes)
    return [shapes.pnode(p, order.index(p.id)) for p in done]


@_route("GET", "/pnodes")
def pnodes_info(c: Coordinator, form: Form) -> dict[str, Any]:
    return _pnodes(c)


@_route("GET", "/pnodes/{pnode}")
def pnode_info(c: Coordinator, form: Form, pnode: str) -> dict[str, Any]:
    if pnode == "probes":
        from pydistem.coordinator.compat.pnode_admin import probes_data

        return probes_data(c)
    try:
        pid = c.resolve_pnode(pnode)
    except PydistemError:
        raise not_found(f"pnode {pnode}") from None
    if pid not in c.pnodes:
        raise not_found(f"pnode {pnode}")
    return shapes.pnode(c.pnodes[pid], list(c.pnodes).index(pid))


@_route("DELETE", "/pnodes")
def pnodes_quit(c: Coordinator, form: Form) -> dict[str, Any]:
    c.quit()
    return _pnodes(c, "READY")


# ---------------------------------------------------------------------------- vnetworks
@_route("POST", "/vnetworks")
def vnetwork_create(c: Coordinator, form: Form) -> dict[str, Any]:
    name = _name(form.get("name") or f"vnetwork{len(c.vnets)}")
    opts = downkeys(json_field(form, "opts", {}))
    vnet = c.vnetwork_create(shapes.vnetwork_desc(name, form.get("address"), opts))
    return _vnetwork(c, vnet)


@_route("GET", "/vnetworks")
def vnetworks_info(c: Coordinator, form: Form) -> dict[str, Any]:
    return {n: _vnetwork(c, v) for n, v in list(c.vnets.items())}


@_route("GET", "/vnetworks/{vnet}")
def vnetwork_info(c: Coordinator, form: Form, vnet: str) -> dict[str, Any]:
    return _vnetwork(c, c.vnetwork_get(vnet))


@_route("DELETE", "/vnetworks/{vnet}")
def vnetwork_remove(c: Coordinator, form: Form, vnet: str) -> dict[str, Any]:
    shape = _vnetwork(c, c.vnetwork_get(vnet))
    c.vnetwork_remove(vnet)
    return shape


@_route("DELETE", "/vnetworks")
def vnetworks_remove(c: Coordinator, form: Form) -> dict[str, Any]:
    for name in list(c.vnets):
        c.vnetwork_remove(name)
    return {}


# ---------------------------------------------------------------------------- vnodes
def _create(c: Coordinator, names: list[str], form: Form) -> list[VNode]:
    desc = _desc(form)
    ssh_key = json_field(form, "ssh_key", None)
    docs = [shapes.vnode_desc(_name(n), desc, ssh_key) for n in names]
    created = c.vnodes_create(docs, prefix="")
    _set_status(c, [v.name for v in created], desc.get("status"))
    return created


def _set_status(c: Coordinator, names: list[str], status: Any) -> None:
    """Distem's ``status`` in a desc: RUNNING starts, DOWN stops, INIT does nothing."""
    if status is None:
        return
    wanted = str(status).upper()
    if wanted == "RUNNING":
        _check(c.vnodes_start(names))
    elif wanted == "DOWN":
        _check(c.vnodes_stop(names))
    elif wanted != "INIT":
        raise invalid(f"status: {status!r} is not RUNNING, DOWN or INIT")


@_route("POST", "/vnodes/{vnode}")
def vnode_create(c: Coordinator, form: Form, vnode: str) -> dict[str, Any]:
    (v,) = _create(c, [vnode], form)
    return _vnode(c, c.vnodes.get(v.name, v))


@_route("POST", "/vnodes")
def vnodes_create(c: Coordinator, form: Form) -> list[dict[str, Any]]:
    names = names_list(json_field(form, "names"))
    if not names:
        raise invalid("names: a JSON array of vnode names is required")
    return [_vnode(c, c.vnodes.get(v.name, v)) for v in _create(c, names, form)]


@_route("GET", "/vnodes")
def vnodes_info(c: Coordinator, form: Form) -> dict[str, Any]:
    return {n: _vnode(c, v) for n, v in list(c.vnodes.items())}


@_route("GET", "/vnodes/{vnode}")
def vnode_info(c: Coordinator, form: Form, vnode: str) -> dict[str, Any]:
    return _vnode(c, _get_vnode(c, vnode))


_ACTIONS = ("update", "stop", "remove", "freeze", "unfreeze")


def _is_remove(form: Form) -> bool:
    """``type=remove`` (python-distem sends ``delete``)."""
    return (form.get("type") or "").lower() in ("remove", "delete")


def _update(c: Coordinator, names: list[str] | None, form: Form) -> list[str]:
    """Apply ``type`` to ``names`` (None = all); return the names acted on."""
    kind = (form.get("type") or "").lower()
    if kind not in _ACTIONS:
        raise invalid(f"type: {form.get('type')!r} is not one of {', '.join(_ACTIONS)}")
    targets = list(c.vnodes) if names is None else names
    for n in targets:
        _get_vnode(c, n)
    if kind == "update":
        desc = _desc(form)
        vupdate.apply(c, targets, desc)
        _set_status(c, targets, desc.get("status"))
    elif kind == "stop":
        _check(c.vnodes_stop(targets))
    elif kind == "freeze":
        _check(c.vnodes_freeze(targets))
    elif kind == "unfreeze":
        _check(c.vnodes_unfreeze(targets))
    return targets


@_route("PUT", "/vnodes/{vnode}")
def vnode_update(c: Coordinator, form: Form, vnode: str) -> Any:
    kind = (form.get("type") or "").lower()
    if _is_remove(form):
        shape = _vnode(c, _get_vnode(c, vnode))
        _check(c.vnodes_remove([vnode]))
        return [shape]
    _update(c, [vnode], form)
    shape = _vnode(c, _get_vnode(c, vnode))
    return shape if kind == "update" else [shape]


@_route("PUT", "/vnodes")
def vnodes_update(c: Coordinator, form: Form) -> list[dict[str, Any]]:
    names = names_list(json_field(form, "names"))
    if _is_remove(form):
        targets = names or list(c.vnodes)  # python-distem sends [] for all
        shapes_ = [_vnode(c, _get_vnode(c, n)) for n in targets]
        _check(c.vnodes_remove(targets))
        return shapes_
    # python-distem sends [] for "all vnodes" (vnodes_stop(), vnodes_freeze() ...)
    return [_vnode(c, c.vnodes[n]) for n in _update(c, names or None, form) if n in c.vnodes]


def _command(form: Form) -> str:
    command = form.get("command")
    if not command or not command.strip():
        raise invalid("command: a shell command is required")
    return command


@_route("POST", "/vnodes/{vnode}/commands")
def vnode_execute(c: Coordinator, form: Form, vnode: str) -> list[str]:
    v = _get_vnode(c, vnode)
    if v.status != "RUNNING":
        raise DistemError(404, "ResourceError", f"vnode {vnode} is {v.status}, not RUNNING")
    r = c.vnode_execute(vnode, _command(form))
    return (r.stdout + r.stderr).rstrip("\n").split("\n") if (r.stdout + r.stderr).strip() else []


@_route("POST", "/commands")
def vnodes_execute(c: Coordinator, form: Form) -> dict[str, Any]:
    names = names_list(json_field(form, "names"))
    results = c.vnodes_execute(names, _command(form))
    return {
        n: {
            "out": r.stdout,
            "err": r.stderr,
            "success": "ok" if r.exit_code == 0 and not r.stderr else "ko",
        }
        for n, r in results.items()
    }


# ---------------------------------------------------------------------------- vifaces
@_route("POST", "/vnodes/{vnode}/ifaces")
def viface_create(c: Coordinator, form: Form, vnode: str) -> dict[str, Any]:
    name = form.get("name")
    if not name:
        raise invalid("name: the viface name is required")
    _get_vnode(c, vnode)
    doc = shapes.viface_desc({**_desc(form), "name": _name(name)}, "desc")
    vif = c.viface_create(vnode, doc, attach=False)  # an empty desc: created unattached
    v = c.vnodes[vnode]
    return shapes.viface(v, v.vifaces.index(vif), vif, c.vnets)


@_route("GET", "/vnodes/{vnode}/ifaces/{iface}")
def viface_info(c: Coordinator, form: Form, vnode: str, iface: str) -> dict[str, Any]:
    v, i, vif = _get_viface(c, vnode, iface)
    return shapes.viface(v, i, vif, c.vnets)


def _dump(t: Any) -> dict[str, Any] | None:
    return None if t is None else t.model_dump(exclude_none=True)


@_route("PUT", "/vnodes/{vnode}/ifaces/{iface}")
def viface_update(c: Coordinator, form: Form, vnode: str, iface: str) -> dict[str, Any]:
    """Empty desc: detach; only ``input``/``output``: traffic (live); else attach."""
    v, i, _vif = _get_viface(c, vnode, iface)
    vif = vupdate.viface_put(c, vnode, iface, _desc(form))
    return shapes.viface(v, i, vif, c.vnets)


@_route("DELETE", "/vnodes/{vnode}/ifaces/{iface}")
def viface_remove(c: Coordinator, form: Form, vnode: str, iface: str) -> dict[str, Any]:
    v, i, vif = _get_viface(c, vnode, iface)
    shape = shapes.viface(v, i, vif, c.vnets)
    c.viface_remove(vnode, iface)
    shape.update(address="0.0.0.0/0", macaddress=None, vnetwork=None)
    return shape


def _traffic_get(c: Coordinator, vnode: str, iface: str, direction: str) -> dict[str, Any]:
    _v, _i, vif = _get_viface(c, vnode, iface)
    shape = shapes.traffic(getattr(vif, direction))
    if shape is None:
        raise DistemError(404, "UninitializedResourceError", f"{direction} of {vnode}.{iface}")
    return shape


def _traffic_put(c: Coordinator, form: Form, vnode: str, iface: str, direction: str) -> Any:
    _v, _i, vif = _get_viface(c, vnode, iface)
    new = shapes.traffic_desc(_desc(form), direction)
    tin = new if direction == "input" else _dump(vif.input)
    tout = new if direction == "output" else _dump(vif.output)
    vif = c.viface_traffic(vnode, iface, tin, tout)
    return shapes.traffic(getattr(vif, direction)) or ""


@_route("GET", "/vnodes/{vnode}/ifaces/{iface}/input")
def vinput_info(c: Coordinator, form: Form, vnode: str, iface: str) -> dict[str, Any]:
    return _traffic_get(c, vnode, iface, "input")


@_route("GET", "/vnodes/{vnode}/ifaces/{iface}/output")
def voutput_info(c: Coordinator, form: Form, vnode: str, iface: str) -> dict[str, Any]:
    return _traffic_get(c, vnode, iface, "output")


@_route("PUT", "/vnodes/{vnode}/ifaces/{iface}/input")
def vinput_update(c: Coordinator, form: Form, vnode: str, iface: str) -> Any:
    return _traffic_put(c, form, vnode, iface, "input")


@_route("PUT", "/vnodes/{vnode}/ifaces/{iface}/output")
def voutput_update(c: Coordinator, form: Form, vnode: str, iface: str) -> Any:
    return _traffic_put(c, form, vnode, iface, "output")


# ---------------------------------------------------------------------------- platform
@_route("POST", "/wait_vnodes")
def wait_vnodes(c: Coordinator, form: Form) -> list[str]:
    opts = downkeys(json_field(form, "opts", {})) or {}
    if not isinstance(opts, dict):
        raise invalid("opts: a JSON object")
    names = names_list(opts.get("vnodes"), "opts.vnodes")
    timeout = as_number("opts.timeout", opts.get("timeout", 600))
    port = None
    if opts.get("port") not in (None, ""):
        port = as_number("opts.port", opts["port"])
        if port != int(port) or not 0 < port < 65536:
            raise invalid(f"opts.port: {opts['port']!r} is not a TCP port (1-65535)")
    # no port: Distem's 22, required of the vnodes whose image has an SSH server
    pending = c.wait_vnodes(names, timeout, None if port is None else int(port), port is None)
    return ["false"] if pending else ["true"]


@_route("GET", "/vplatform")
def vplatform_info(c: Coordinator, form: Form) -> str:
    doc = {
        "vplatform": {
            "pnodes": _pnodes(c),
            "vnodes": {n: _vnode(c, v) for n, v in list(c.vnodes.items())},
            "vnetworks": {n: _vnetwork(c, v) for n, v in list(c.vnets.items())},
        }
    }
    return json.dumps(doc, indent=2)


# ---------------------------------------------------------------------------- not yet
#: Distem routes this slice does not serve: (method, path, feature named in the 501)
UNSERVED = [
    ("PUT", "/vnetworks", "vnetwork routing interface"),
    ("POST", "/vplatform/vnodesdotfile", "vnodes dot file"),
    ("POST", "/vplatform/loadphystopo", "alevin"),
    ("POST", "/vplatform/alevin", "alevin"),
]


def _unserved(feature: str) -> Callable[..., Any]:
    def handler(c: Coordinator, form: Form, **_: str) -> Any:
        raise not_implemented(feature)

    handler.__name__ = "unserved_" + "".join(ch if ch.isalnum() else "_" for ch in feature)
    return handler


for _method, _path, _feature in UNSERVED:
    _route(_method, _path)(_unserved(_feature))
