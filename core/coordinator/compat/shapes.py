"""Distem 1.4's JSON shapes (``HashWriter``) of pnodes, vnodes, vifaces, vnetworks, traffic.

Also the reverse mapping of Distem's traffic and vnode descriptions to pydistem's model.
Keys keep Distem's order; values Distem had as strings are strings.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from pydistem.coordinator.compat import vresources
from pydistem.coordinator.compat.encoding import invalid, parse_bool
from pydistem.model.specs import PNode, Traffic, VIface, VNetwork, VNode, VRoute

log = logging.getLogger(__name__)


def ignore_unknown(field: str, desc: dict[str, Any], known: set[str]) -> None:
    """Distem ignores desc keys it does not know: so do we, and log them."""
    unknown = sorted(set(desc) - known)
    if unknown:
        log.info("distem-compat: %s: ignored unknown keys %s", field, ", ".join(unknown))


#: Distem traffic property -> (its inner key, the Traffic field)
_TRAFFIC = {
    "bandwidth": ("rate", "bandwidth"),
    "loss": ("percent", "loss"),
    "corruption": ("percent", "corruption"),
    "duplication": ("percent", "duplication"),
    "reordering": ("percent", "reordering"),
}


def pnode(p: PNode, index: int, status: str | None = None) -> dict[str, Any]:
    cores = {
        str(i): {
            "physicalid": str(i),
            "coreid": str(i),
            "frequency": None,
            "frequencies": [],
            "cache_links": [],
        }
        for i in range(p.cores)
    }
    return {
        "id": str(index),
        "address": p.address,
        "cpu": {"id": str(index), "cores": cores, "cores_alloc": [], "critical_cache_links": []},
        "memory": {
            "capacity": str(p.memory_mb),
            "swap": "0",
            "max_mem_usage": "0",
            "max_swap_usage": "0",
        },
        "status": status or p.status,
        "algorithms": {"cpu": p.cpu_algorithm},
    }


def traffic(t: Traffic | None) -> dict[str, Any] | None:
    """Distem's vtraffic object: only the properties that are set."""
    if t is None or t.is_empty():
        return None
    out: dict[str, Any] = {}
    if t.bandwidth is not None:
        out["bandwidth"] = {"rate": t.bandwidth}
    if t.latency is not None or t.jitter is not None:
        out["latency"] = {"delay": t.latency, "jitter": t.jitter}
    for prop in ("loss", "corruption", "duplication", "reordering"):
        value = getattr(t, prop)
        if value is not None:
            out[prop] = {"percent": value}
    return out


def traffic_desc(desc: Any, field: str) -> dict[str, Any] | None:
    """pydistem Traffic fields from a Distem vtraffic desc; None (no limit) when empty.

    ``{"bandwidth": {}}`` (CLI ``bw=unlimited``) means no limit for that property.
    """
    if desc is None or desc == {}:
        return None
    if not isinstance(desc, dict):
        raise invalid(f"{field}: a vtraffic object like {{'bandwidth': {{'rate': '10mbps'}}}}")
    out: dict[str, Any] = {}
    for key, value in desc.items():
        if not isinstance(value, dict):
            raise invalid(f"{field}.{key}: an object")
        if key == "latency":
            if value.get("delay") is not None:
                out["latency"] = str(value["delay"])
            if value.get("jitter") is not None:
                out["jitter"] = str(value["jitter"])
        elif key in _TRAFFIC:
            inner, target = _TRAFFIC[key]
            if value.get(inner) is not None:
                out[target] = str(value[inner])
        else:
            raise invalid(f"{field}.{key}: unknown traffic property")
    return out or None


def viface(v: VNode, i: int, vif: VIface, vnets: dict[str, VNetwork]) -> dict[str, Any]:
    net = vnets.get(vif.vnetwork or "")
    if vif.address and net is not None:
        address = f"{vif.address}/{net.network.prefixlen}"
    else:
        address = "0.0.0.0/0"
    return {
        "id": str(i),
        "name": vif.name,
        "vnode": v.name,
        "address": address,
        "macaddress": vif.macaddress,
        "vnetwork": vif.vnetwork,
        "input": traffic(vif.input),
        "output": traffic(vif.output),
        "bridge": None,
    }


def vnode(
    v: VNode, index: int, vnets: dict[str, VNetwork], pnodes: dict[str, PNode]
) -> dict[str, Any]:
    fs = None
    if v.vfilesystem is not None:
        fs = {
            "image": v.vfilesystem.image,
            "shared": v.vfilesystem.shared,
            "path": None,
            "sharedpath": None,
            "cow": v.vfilesystem.shared,  # an overlay on the shared image is copy-on-write
            "disk_throttling": vresources.disk_throttling(v.disk),
        }
    host = pnodes[v.host].address if v.host in pnodes else v.host
    ssh = None
    if v.ssh_key is not None:
        ssh = v.ssh_key.model_dump(exclude_none=True)
    p = pnodes.get(str(v.host))
    vcpu = vresources.vcpu(v.cpu, p.cores if p else 0, p.cpu_mhz if p else 0.0)
    return {
        "id": str(index),
        "name": v.name,
        "status": v.status,
        "vfilesystem": fs,
        "vifaces": [viface(v, i, vif, vnets) for i, vif in enumerate(v.vifaces)],
        "vcpu": vcpu,
        "vmem": vresources.vmem(v.memory),
        "mode": v.mode,
        "host": host,
        "ssh_key": ssh,
    }


def vnetwork(
    n: VNetwork,
    vnodes: dict[str, VNode],
    vroutes: Iterable[VRoute] = (),
    vnets: dict[str, VNetwork] | None = None,
) -> dict[str, Any]:
    """Distem's vnetwork; ``vroutes`` keyed by destination CIDR (from ``vnets``)."""
    users = [v.name for v in vnodes.values() if any(i.vnetwork == n.name for i in v.vifaces)]
    opts: dict[str, Any] = {"network_type": "vxlan" if n.network_type == "vxlan" else "classical"}
    if n.root_interface:
        opts["root_interface"] = n.root_interface
    if n.network_type == "vxlan" and n.vni is not None:
        opts["vxlan_id"] = n.vni
    every = list(vroutes)
    routes = {}
    for r in every:
        if r.source == n.name:
            dest = (vnets or {}).get(r.destination)
            routes[dest.address if dest else r.destination] = vroute(r, every)
    return {"name": n.name, "address": n.address, "vnodes": users, "vroutes": routes, "opts": opts}


def vroute(r: VRoute, every: list[VRoute]) -> dict[str, Any]:
    """Distem's vroute: ``{"id", "networksrc", "networkdst", "gateway"}`` (id: creation order)."""
    index = next((i for i, x in enumerate(every) if x == r), len(every))
    return {
        "id": str(index),
        "networksrc": r.source,
        "networkdst": r.destination,
        "gateway": r.gateway,
    }


def vnetwork_desc(name: str, address: str | None, opts: Any) -> dict[str, Any]:
    """pydistem VNetwork fields from Distem's ``name``, ``address``, ``opts``."""
    if address is None:
        raise invalid("address: a network address like 10.144.0.0/22 is required")
    try:
        net = ipaddress.IPv4Network(address, strict=False)
    except ValueError:
        raise invalid(f"address: {address!r} is not like 10.144.0.0/22") from None
    if "/" not in address:
        raise invalid(f"address: {address!r} has no prefix (10.144.0.0/22)")
    doc: dict[str, Any] = {"name": name, "address": str(net)}
    opts = opts or {}
    if not isinstance(opts, dict):
        raise invalid("opts: a JSON object")
    kind = str(opts.get("network_type", "classical")).lower()
    if kind not in ("classical", "vxlan"):
        raise invalid(f"opts.network_type: {kind!r} is not classical or vxlan")
    doc["network_type"] = "bridge" if kind == "classical" else "vxlan"
    if opts.get("root_interface"):
        doc["root_interface"] = str(opts["root_interface"])
    elif kind == "classical":
        # Distem bridges the pnodes' default interface; pydistem never takes that one
        # implicitly: a local bridge on one pnode, VXLAN over several (docs/networks.md)
        doc["network_type"] = "auto"
    return doc


VIFACE_KEYS = ("name", "vnetwork", "address", "macaddress", "default", "input", "output")


def viface_desc(desc: dict[str, Any], field: str) -> dict[str, Any]:
    """pydistem VIface fields from a Distem viface desc (lower-cased keys)."""
    doc: dict[str, Any] = {}
    for key in ("name", "vnetwork", "macaddress"):
        if desc.get(key) not in (None, ""):
            doc[key] = str(desc[key])
    if desc.get("address") not in (None, ""):
        doc["address"] = str(desc["address"])
    if "default" in desc:
        doc["default"] = parse_bool(desc["default"])
    for direction in ("input", "output"):
        if direction in desc:
            doc[direction] = traffic_desc(desc[direction], f"{field}.{direction}")
    ignore_unknown(field, desc, set(VIFACE_KEYS))
    return doc


def vnode_desc(name: str, desc: dict[str, Any], ssh_key: Any) -> dict[str, Any]:
    """pydistem VNode fields (runtime lxc) from a Distem vnode desc; ``status`` is left out."""
    doc: dict[str, Any] = {"name": name, "runtime": "lxc"}
    if desc.get("mode") not in (None, ""):
        doc["mode"] = mode_desc(desc["mode"])
    if desc.get("host") not in (None, ""):
        doc["host"] = str(desc["host"])
    fs = desc.get("vfilesystem")
    if fs not in (None, {}):
        doc["vfilesystem"] = vfilesystem_desc(fs, "vfilesystem")
        disk = vresources.disk_from_desc(fs.get("disk_throttling"), "vfilesystem.disk_throttling")
        if disk is not None:
            doc["disk"] = disk
    vifaces = desc.get("vifaces") or []
    if not isinstance(vifaces, list):
        raise invalid("vifaces: a JSON array")
    doc["vifaces"] = [
        viface_desc(v if isinstance(v, dict) else {}, f"vifaces[{i}]")
        for i, v in enumerate(vifaces)
    ]
    key = ssh_key if ssh_key not in (None, {}) else desc.get("ssh_key")
    if key not in (None, {}):
        if not isinstance(key, dict):
            raise invalid("ssh_key: an object {public, private}")
        doc["ssh_key"] = {k: str(key[k]) for k in ("public", "private") if key.get(k)}
    if desc.get("vcpu") not in (None, {}):
        doc["cpu"] = vresources.cpu_from_desc(desc["vcpu"])
    if desc.get("vmem") not in (None, {}):
        memory = vresources.memory_from_desc(desc["vmem"])
        if memory is not None:
            doc["memory"] = memory
    ignore_unknown("desc", desc, VNODE_KEYS | {"vcpu", "vmem"})
    return doc


def mode_desc(mode: Any) -> str:
    """Distem's vnode ``mode``: ``NORMAL`` or ``GATEWAY``, in any case."""
    text = str(mode).upper()
    if text not in ("NORMAL", "GATEWAY"):
        raise invalid(f"mode: {mode!r} is not NORMAL or GATEWAY")
    return text


VNODE_KEYS = {"name", "host", "vfilesystem", "vifaces", "ssh_key", "mode", "status"}


def vfilesystem_desc(fs: Any, field: str) -> dict[str, Any]:
    """pydistem VFilesystem fields from Distem's ``{image, shared, cow, disk_throttling}``
    (``disk_throttling`` is the vnode's ``disk``: :func:`.vresources.disk_from_desc`).

        pydistem builds a rootfs as an overlay on the image extracted once per pnode
        (copy-on-write: writes stay private to the vnode), or as a private copy. Distem's
        ``cow: true`` and ``shared: true`` both map to the overlay; ``shared: false`` with
        ``cow: false`` to the private copy; neither given, to the overlay.
    """
    if not isinstance(fs, dict) or not fs.get("image"):
        raise invalid(f"{field}: an object with an image")
    given = "shared" in fs or "cow" in fs
    overlay = parse_bool(fs.get("shared")) or parse_bool(fs.get("cow")) or not given
    ignore_unknown(field, fs, {"image", "shared", "cow", "disk_throttling", "path", "sharedpath"})
    return {"image": str(fs["image"]), "shared": overlay}
