"""Changes to an existing vnode: its mode (IPv4 forwarding), its pnode before it is
built, and attaching or detaching one of its vifaces while it does not run (the
pnode agent rebuilds the changed vifaces at the next start).

The :class:`~pydistem.coordinator.service.Coordinator` methods ``vnode_mode``,
``vnode_host``, ``viface_attach`` and ``viface_detach`` call these; each one checks
everything first and changes nothing on bad input.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from pydistem.coordinator import placement, vroutes
from pydistem.errors import Conflict, NotFound, PydistemError, ValidationError
from pydistem.model.specs import SshKey, VIface, VNode
from pydistem.model.validate import parse

if TYPE_CHECKING:
    from pydistem.coordinator.service import Coordinator

MODES = ("NORMAL", "GATEWAY")
#: states in which a vnode's namespace exists on its pnode (its forwarding can be set)
BUILT = ("RUNNING", "FROZEN", "DOWN")
#: states in which a vnode's vifaces may change (rebuilt by the next start)
STOPPED = ("INIT", "DOWN", "FAILED")


def set_mode(c: Coordinator, name: str, mode: str) -> VNode:
    """``GATEWAY``: the vnode forwards IPv4 between its vifaces; ``NORMAL``: it does not.
    Applied live to a built vnode. Idempotent. A vroute's gateway stays ``GATEWAY``
    (ValidationError naming ``mode``)."""
    wanted = str(mode).upper()
    if wanted not in MODES:
        raise ValidationError("mode", f"{mode!r} is not NORMAL or GATEWAY")
    with c._lock:
        v = c._get_vnode(name)
        route = vroutes.gateway_of(c, v)
        if wanted == "NORMAL" and route is not None:
            raise ValidationError(
                "mode",
                f"vnode {name} is the gateway of vroute {route.source} -> "
                f"{route.destination}: it stays GATEWAY",
            )
        host, status = v.host, v.status
    if status in BUILT and host:
        plan = {name: {"routes": [], "forward": wanted == "GATEWAY"}}
        err = c.link(str(host)).vnodes_routes(plan).get(name)
        if err:
            raise PydistemError(f"vnode {name}: mode {wanted}: {err}")
    with c._lock:
        v.mode = wanted  # type: ignore[assignment]
        c._save_vnodes([name])
    return v


def set_host(c: Coordinator, name: str, host: str | None) -> VNode:
    """Move a vnode that is not built yet (``INIT``) to pnode ``host`` (None or
    ``auto``: placed again). Conflict once it was started (its files are on its pnode)."""
    with c._lock:
        v = c._get_vnode(name)
        if v.status != "INIT":
            raise Conflict(f"vnode {name} is {v.status}: its pnode is fixed once it is built")
        new = v.model_copy(deep=True)
        new.host = None
        if host not in (None, "", "auto"):
            pid = c.resolve_pnode(str(host), "host")
            if pid not in c.pnodes:
                known = ", ".join(c.pnodes)
                raise ValidationError("host", f"unknown pnode {host!r} (initialised: {known})")
            new.host = pid
        others = [o for o in c.vnodes.values() if o.name != name]
        placement.place([new], others, c.pnodes, c.vnets, {}, lambda i: "")
        c.link(str(new.host)).check_vnodes([new])
        v.host = new.host
        c._save_vnodes([name])
        return v


def set_ssh_key(c: Coordinator, name: str, key: dict[str, Any] | None) -> VNode:
    """Replace the SSH keys of a vnode that does not run (``{"public", "private"}``;
    None removes them); its runtime installs them at the next start."""
    with c._lock:
        v = c._get_vnode(name)
        if v.status not in STOPPED:
            raise Conflict(f"vnode {name} is {v.status}: stop it to change its SSH keys")
        new = None if not key else parse(SshKey, key, "ssh_key")
        v.ssh_key = new
        c._save_vnodes([name])
        return v


def _unbuilt(c: Coordinator, vnode: str, viface: str, what: str) -> tuple[VNode, VIface]:
    v = c._get_vnode(vnode)
    vif = next((i for i in v.vifaces if i.name == viface), None)
    if vif is None:
        raise NotFound("viface", f"{vnode}.{viface}")
    if v.status not in STOPPED:
        raise Conflict(f"vnode {vnode} is {v.status}: stop it to {what} viface {viface}")
    return v, vif


def _not_a_gateway(c: Coordinator, v: VNode, vif: VIface) -> None:
    for r in c.vroutes.values():
        if vif.address and r.gateway == vif.address:
            raise ValidationError(
                "desc",
                f"{v.name}.{vif.name} ({vif.address}) is the gateway of vroute "
                f"{r.source} -> {r.destination}",
            )


def viface_detach(c: Coordinator, vnode: str, viface: str) -> VIface:
    """Detach a viface of a vnode that does not run (INIT, DOWN, FAILED): no vnetwork,
    no address (released), no traffic limits; the viface stays. Idempotent."""
    with c._lock:
        v, vif = _unbuilt(c, vnode, viface, "detach")
        _not_a_gateway(c, v, vif)
        if vif.vnetwork in c.pools and vif.address:
            c.pools[vif.vnetwork].release(vif.address)
        bare = VIface(name=vif.name)
        v.vifaces = [bare if i.name == viface else i for i in v.vifaces]
        c._save_vnodes([vnode])
        return bare


def viface_attach(c: Coordinator, vnode: str, viface: str, data: dict[str, Any]) -> VIface:
    """Attach (or move) a viface of a vnode that does not run to a vnetwork: ``data`` has
    ``vnetwork`` and/or ``address``, optional ``macaddress``, ``default``, ``input``,
    ``output`` (limits not given are kept)."""
    with c._lock:
        v, vif = _unbuilt(c, vnode, viface, "attach")
        if not data.get("vnetwork") and not data.get("address"):
            raise ValidationError("desc.vnetwork", "a vnetwork or an address is required")
        if vif.address and data.get("address") != vif.address:
            _not_a_gateway(c, v, vif)
        keep = {k: getattr(vif, k) for k in ("input", "output", "default") if k not in data}
        new = parse(VIface, {"name": viface, **data}, "desc")
        for key, value in keep.items():
            setattr(new, key, copy.deepcopy(value))
        pools = copy.deepcopy(c.pools)
        if vif.vnetwork in pools and vif.address:
            pools[vif.vnetwork].release(vif.address)
        c._plan_viface(new, c.vnets, pools, "desc")
        clash = next(
            (i for i in v.vifaces if i.name != viface and i.vnetwork == new.vnetwork), None
        )
        if clash is not None:
            raise ValidationError(
                "desc.vnetwork", f"vnode {vnode} is on {new.vnetwork} already ({clash.name})"
            )
        v.vifaces = [new if i.name == viface else i for i in v.vifaces]
        c.pools = pools
        c._save_vnodes([vnode])
        return new
