"""Platform-wide tables pushed to every pnode: Distem's global /etc/hosts, global ARP
table, and the peers latency matrix (``set_peers_latencies``).

Each function plans from the coordinator's state (pure checks first: nothing changes
on bad input), then asks the pnode agents to apply, and returns ``vnode -> error``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from pydistem.coordinator.service import Coordinator
from pydistem.errors import Conflict, NotFound, ValidationError
from pydistem.model.specs import VIface, VNode


def vnode_host_lines(c: Coordinator) -> list[str]:
    """``<ip> <vnode>`` for each vnode's default viface, ``<ip> <vnode>-<vnetwork>``
    for every attached viface (Distem's global /etc/hosts entries)."""
    lines = c.etc_hosts().splitlines()
    return [line for line in lines if "localhost" not in line]


def set_global_etchosts(c: Coordinator) -> dict[str, str | None]:
    """Every running vnode gets the full /etc/hosts; every pnode gets the vnode lines in
    a marked block of its own /etc/hosts (removed by quit). Returns vnode -> error."""
    text = c.etc_hosts()
    lines = vnode_host_lines(c)
    results: dict[str, str | None] = {}
    for pid in list(c.pnodes):
        results.update(c.link(pid).etc_hosts_set(text, lines))
    return results


def set_global_arptable(c: Coordinator) -> dict[str, str | None]:
    """Every running vnode gets a permanent ARP entry for each vnode on its vnetworks,
    so that no ARP request is ever needed. Returns vnode -> error."""
    hosts = sorted({str(v.host) for v in c.vnodes.values() if v.status == "RUNNING"})
    macs: dict[str, dict[str, str]] = {}
    for pid in hosts:
        macs.update(c.link(pid).vifaces_macs())
    entries = []
    for name, by_iface in macs.items():
        v = c.vnodes.get(name)
        if v is None:
            continue
        for vif in v.vifaces:
            if vif.vnetwork and vif.address and vif.name in by_iface:
                mac = by_iface[vif.name]
                entries.append({"vnetwork": vif.vnetwork, "address": vif.address, "mac": mac})
    results: dict[str, str | None] = {}
    for pid in hosts:
        results.update(c.link(pid).arp_fill(entries))
    return results


def _latency(field: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValidationError(field, f"{value!r} is not a latency in ms")
    try:
        ms = float(value)
    except (TypeError, ValueError):
        raise ValidationError(field, f"{value!r} is not a latency in ms") from None
    if not math.isfinite(ms) or ms < 0:
        raise ValidationError(field, f"{value!r}: a latency is a number of ms >= 0")
    return ms


def _first_viface(v: VNode) -> VIface:
    for vif in v.vifaces:
        if vif.vnetwork and vif.address:
            return vif
    raise ValidationError("vnodes", f"vnode {v.name} has no attached viface")


def _address_towards(dest: VNode, vnetwork: str | None) -> str | None:
    for vif in dest.vifaces:
        if vif.vnetwork == vnetwork and vif.address:
            return vif.address
    default = dest.default_viface()
    return default.address if default is not None else None


def plan_peers_latencies(
    c: Coordinator, names: list[str], matrix: Any
) -> dict[str, dict[str, dict[str, Any]]]:
    """pnode -> vnode -> ``{"viface", "latencies": {dest_ip: "10ms"}}`` (pure).

    ``matrix[i][j]`` is the one-way latency in ms from ``names[i]`` to ``names[j]``;
    0 means no rule. Applied on each vnode's first attached viface, as Distem does."""
    if not isinstance(matrix, list) or len(matrix) != len(names):
        raise ValidationError(
            "matrix", f"must be a {len(names)}x{len(names)} array (one row per vnode)"
        )
    vnodes = []
    for i, name in enumerate(names):
        v = c.vnodes.get(name)
        if v is None:
            raise NotFound("vnode", name)
        if v.status != "RUNNING":
            raise Conflict(f"vnode {name} is {v.status}: start it before setting latencies")
        row = matrix[i]
        if not isinstance(row, list) or len(row) != len(names):
            raise ValidationError(f"matrix[{i}]", f"must hold {len(names)} latencies")
        vnodes.append(v)
    plan: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for i, v in enumerate(vnodes):
        vif = _first_viface(v)
        latencies: dict[str, str] = {}
        for j, dest in enumerate(vnodes):
            ms = _latency(f"matrix[{i}][{j}]", matrix[i][j])
            if i == j or ms == 0:
                continue
            address = _address_towards(dest, vif.vnetwork)
            if address is not None:
                latencies[address] = f"{ms:g}ms"
        plan[str(v.host)][v.name] = {"viface": vif.name, "latencies": latencies}
    return dict(plan)


def set_peers_latencies(c: Coordinator, names: list[str], matrix: Any) -> None:
    """Distem's ``set_peers_latencies(vnodes, matrix)``. Raises ValidationError (bad
    matrix), NotFound, Conflict (a vnode not running), Unsupported (the pnode's kernel
    lacks sch_netem; raised by the first vnode, before it is changed)."""
    for pid, rules in plan_peers_latencies(c, names, matrix).items():
        c.link(pid).peers_latencies(rules)
