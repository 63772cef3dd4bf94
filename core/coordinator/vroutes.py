"""vroutes: routes between vnetworks through gateway vnodes (Distem's ``vroute_create``
and ``vroute_complete``).

A vroute ``source -> destination via gateway`` means: every vnode attached to
``source`` (and not to ``destination``) reaches ``destination``'s subnet through
``gateway``, an address in ``source`` of a vnode that forwards (IPv4 forwarding on).
``complete`` creates every missing vroute along shortest paths in the graph whose
nodes are vnetworks and whose edges are vnodes attached to two of them. A vnetwork's
``gateway`` adds the default route of the vnodes whose default viface is on it.
The pure part (``resolve_gateway``, ``complete``, ``routes_for``) is unit-tested as
data; :func:`push` installs the result through the agents.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydistem.errors import NotFound, PydistemError, ValidationError
from pydistem.model.specs import VNetwork, VNode, VRoute

if TYPE_CHECKING:
    from pydistem.coordinator.service import Coordinator

STORE_KIND = "vroute"


def key(source: str, destination: str) -> str:
    return f"{source}>{destination}"


def _address_in(v: VNode, vnet: str) -> str | None:
    return next((i.address for i in v.vifaces if i.vnetwork == vnet and i.address), None)


def resolve_gateway(
    vnodes: Iterable[VNode], source: VNetwork, gateway: str, field: str = "gateway"
) -> str:
    """The address in ``source`` of the gateway vnode named by ``gateway`` (a vnode
    name, or any address of one of its vifaces). ValidationError otherwise."""
    vnodes = list(vnodes)
    owner: VNode | None = next((v for v in vnodes if v.name == gateway), None)
    if owner is None:
        try:
            ip = str(ipaddress.IPv4Address(gateway.split("/")[0]))
        except ValueError:
            raise ValidationError(field, f"{gateway!r} is neither a vnode nor an address") from None
        owner = next((v for v in vnodes if any(i.address == ip for i in v.vifaces)), None)
        if owner is None:
            raise ValidationError(field, f"no vnode has the address {ip}")
    addr = _address_in(owner, source.name)
    if addr is None:
        raise ValidationError(
            field, f"gateway {owner.name} is not attached to vnetwork {source.name}"
        )
    return addr


def check(items: list[dict[str, str]], vnets: dict[str, VNetwork], vnodes: Iterable[VNode]) -> None:
    """Validate platform-file vroutes against the planned platform (before building)."""
    vnodes = list(vnodes)
    for i, r in enumerate(items):
        for end in ("source", "destination"):
            if r[end] not in vnets:
                raise ValidationError(f"vroutes[{i}].{end}", f"unknown vnetwork {r[end]!r}")
        if r["source"] == r["destination"]:
            raise ValidationError(f"vroutes[{i}].destination", "the same as source")
        resolve_gateway(vnodes, vnets[r["source"]], r["gateway"], f"vroutes[{i}].gateway")


def complete(
    vnets: dict[str, VNetwork], vnodes: Iterable[VNode], existing: dict[str, VRoute]
) -> list[VRoute]:
    """The vroutes missing for every vnetwork to reach every other reachable one."""
    vnodes = sorted(vnodes, key=lambda v: v.name)
    # edges: vnetwork -> [(neighbour vnetwork, gateway vnode)]
    edges: dict[str, list[tuple[str, VNode]]] = {n: [] for n in vnets}
    for v in vnodes:
        nets = sorted({i.vnetwork for i in v.vifaces if i.vnetwork in vnets and i.address})
        for a in nets:
            for b in nets:
                if a != b:
                    edges[a].append((b, v))
    out: list[VRoute] = []
    for src in sorted(vnets):
        # BFS from src; first_hop[n] = the gateway vnode of the first edge toward n
        first_hop: dict[str, VNode] = {}
        seen = {src}
        queue: deque[str] = deque()
        for nb, gw in edges[src]:
            if nb not in seen:
                seen.add(nb)
                first_hop[nb] = gw
                queue.append(nb)
        while queue:
            cur = queue.popleft()
            for nb, _ in edges[cur]:
                if nb not in seen:
                    seen.add(nb)
                    first_hop[nb] = first_hop[cur]
                    queue.append(nb)
        for dst in sorted(first_hop):
            if key(src, dst) in existing:
                continue
            addr = _address_in(first_hop[dst], src)
            assert addr is not None
            out.append(VRoute(source=src, destination=dst, gateway=addr))
    return out


DEFAULT = "0.0.0.0/0"


def default_route(v: VNode, vnets: dict[str, VNetwork]) -> dict[str, Any] | None:
    """The default route of ``v`` through the ``gateway`` of the vnetwork of its default
    viface: ``{destination: 0.0.0.0/0, gateway, device, onlink}`` (``onlink`` when the
    gateway lies outside the vnetwork's prefix), or None (no gateway there, or the
    gateway is ``v`` itself)."""
    vif = v.default_viface()
    vnet = vnets.get(vif.vnetwork) if vif is not None and vif.vnetwork else None
    if vif is None or vnet is None or vnet.gateway is None:
        return None
    if any(i.address == vnet.gateway for i in v.vifaces):
        return None
    return {
        "destination": DEFAULT,
        "gateway": vnet.gateway,
        "device": vif.name,
        "onlink": not vnet.gateway_inside,
    }


def routes_for(v: VNode, vnets: dict[str, VNetwork], vroutes: Iterable[VRoute]) -> dict[str, Any]:
    """What vnode ``v`` needs: ``{"routes": [{destination, gateway, ...}], "forward":
    bool}``: a route per vroute towards a vnetwork it is not on, and the default route
    of its default viface's vnetwork ``gateway`` (vroutes, to prefixes, win over it by
    longest match; a vnetwork is never 0.0.0.0/0, so the two never collide)."""
    mine = {i.vnetwork for i in v.vifaces if i.vnetwork and i.address}
    own = {i.address for i in v.vifaces if i.address}
    routes: dict[str, dict[str, Any]] = {}
    forward = v.mode == "GATEWAY"
    for r in sorted(vroutes, key=lambda r: (r.source, r.destination)):
        if r.gateway in own:
            forward = True
            continue
        if r.source in mine and r.destination not in mine and r.destination in vnets:
            dest = vnets[r.destination].address
            routes.setdefault(dest, {"destination": dest, "gateway": r.gateway})
    default = default_route(v, vnets)
    if default is not None:
        routes[DEFAULT] = default
    return {"routes": [routes[d] for d in sorted(routes)], "forward": forward}


# ---------------------------------------------------------------------------- coordinator


def load(c: Coordinator) -> dict[str, VRoute]:
    return {k: VRoute.model_validate(d) for k, d in c.store.all(STORE_KIND)}


def plans(c: Coordinator, names: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """host -> {vnode: routes plan} for the given vnodes that need anything."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    routes = list(c.vroutes.values())
    for n in names:
        v = c.vnodes.get(n)
        if v is None or not v.host:
            continue
        plan = routes_for(v, c.vnets, routes)
        if plan["routes"] or plan["forward"]:
            # forwarding is turned on where needed, never off (``None``: left as it is)
            plan["forward"] = True if plan["forward"] else None
            out.setdefault(str(v.host), {})[n] = plan
    return out


def push(c: Coordinator, names: Iterable[str] | None = None) -> dict[str, str | None]:
    """Install the routes of running vnodes (all by default) on their pnodes."""
    with c._lock:
        running = [
            n for n in (names if names is not None else c.vnodes)
            if n in c.vnodes and c.vnodes[n].status == "RUNNING"
        ]  # fmt: skip
        by_host = plans(c, running)
    return c._fan(by_host, lambda host, plan: c.link(host).vnodes_routes(plan))


def create(c: Coordinator, source: str, destination: str, gateway: str) -> VRoute:
    """Create (or replace) one vroute and install it in the running vnodes."""
    with c._lock:
        src = c.vnetwork_get(source)
        if not isinstance(destination, str) or destination not in c.vnets:
            raise ValidationError("destination", f"unknown vnetwork {destination!r}")
        if destination == source:
            raise ValidationError("destination", "a vroute joins two different vnetworks")
        if not isinstance(gateway, str) or not gateway:
            raise ValidationError("gateway", "a vnode name or an address is required")
        addr = resolve_gateway(c.vnodes.values(), src, gateway)
        route = VRoute(source=source, destination=destination, gateway=addr)
        c.vroutes[key(source, destination)] = route
        c.store.put(STORE_KIND, key(source, destination), route.model_dump())
        _gateway_mode(c, [route])
    _report(push(c))
    return route


def _gateway_mode(c: Coordinator, routes: Iterable[VRoute]) -> None:
    """Switch the gateways of ``routes`` to mode GATEWAY, as Distem does (caller holds
    the lock); the push that follows turns their forwarding on."""
    addresses = {r.gateway for r in routes}
    changed = []
    for v in c.vnodes.values():
        if v.mode != "GATEWAY" and any(i.address in addresses for i in v.vifaces):
            v.mode = "GATEWAY"
            changed.append(v.name)
    if changed:
        c._save_vnodes(changed)


def gateway_of(c: Coordinator, vnode: VNode) -> VRoute | None:
    """A vroute whose gateway is an address of ``vnode``, if any."""
    own = {i.address for i in vnode.vifaces if i.address}
    return next((r for r in c.vroutes.values() if r.gateway in own), None)


def complete_all(c: Coordinator) -> list[VRoute]:
    """``vroute_complete``: every missing vroute, installed in the running vnodes."""
    with c._lock:
        new = complete(c.vnets, c.vnodes.values(), c.vroutes)
        with c.store.batch():
            for r in new:
                c.vroutes[key(r.source, r.destination)] = r
                c.store.put(STORE_KIND, key(r.source, r.destination), r.model_dump())
            _gateway_mode(c, new)
    _report(push(c))
    return new


def forget_vnetwork(c: Coordinator, name: str) -> None:
    """Drop the vroutes from or to vnetwork ``name`` (caller holds the lock)."""
    for k, r in list(c.vroutes.items()):
        if name in (r.source, r.destination):
            del c.vroutes[k]
            c.store.delete(STORE_KIND, k)


def forget_all(c: Coordinator) -> None:
    for k in list(c.vroutes):
        c.store.delete(STORE_KIND, k)
    c.vroutes.clear()


def _report(results: dict[str, str | None]) -> None:
    failed = {n: e for n, e in results.items() if e}
    if failed:
        first = sorted(failed.items())[:5]
        raise PydistemError(
            "routes could not be installed in " + "; ".join(f"{n}: {e}" for n, e in first)
        )


def get(c: Coordinator, source: str, destination: str) -> VRoute:
    try:
        return c.vroutes[key(source, destination)]
    except KeyError:
        raise NotFound("vroute", key(source, destination)) from None
