"""Distem's vnode and viface updates (``PUT /vnodes/:v`` ``type=update``, ``PUT
/vnodes/:v/ifaces/:i``), translated to the Coordinator's methods.

A vnode desc is applied in this order: ``host``, ``vfilesystem``, ``vcpu`` and
``vmem``, ``ssh_key``, ``vifaces``, ``mode`` (the router applies ``status`` last). Each step is
checked before it changes anything; a step that fails stops the update (the steps
before it stay applied, as in Distem). A viface desc that is empty detaches the
viface; one with only ``input``/``output`` changes its traffic limits (live); any
other attaches it (``vnetwork`` and/or ``address``).
"""

from __future__ import annotations

from typing import Any

from pydistem.coordinator.compat import shapes
from pydistem.coordinator.compat.encoding import downkeys, invalid
from pydistem.coordinator.service import Coordinator
from pydistem.errors import NotFound
from pydistem.model.specs import VIface

#: vnode desc keys an update applies (``name``: python-distem sends it; ignored)
KNOWN = {"status", "name", "host", "vfilesystem", "vcpu", "vifaces", "vmem", "mode", "ssh_key"}


def _dump(t: Any) -> dict[str, Any] | None:
    return None if t is None else t.model_dump(exclude_none=True)


def viface_put(c: Coordinator, vnode: str, name: str, desc: dict[str, Any]) -> VIface:
    """One viface desc of Distem: detach (empty), traffic (input/output only) or attach."""
    v = c._get_vnode(vnode)
    vif = next((i for i in v.vifaces if i.name == name), None)
    if vif is None:
        raise NotFound("viface", f"{vnode}.{name}")
    desc = {k: val for k, val in desc.items() if k != "name"}
    if not desc:
        return c.viface_detach(vnode, name)
    if set(desc) <= {"input", "output"}:
        tin = shapes.traffic_desc(desc["input"], "input") if "input" in desc else _dump(vif.input)
        tout = (
            shapes.traffic_desc(desc["output"], "output") if "output" in desc else _dump(vif.output)
        )
        return c.viface_traffic(vnode, name, tin, tout)
    doc = shapes.viface_desc(desc, "desc")
    doc.pop("name", None)
    return c.viface_attach(vnode, name, doc)


def _vifaces(c: Coordinator, vnode: str, items: Any) -> None:
    """Each entry creates the viface when its name is new, else updates it."""
    if not isinstance(items, list):
        raise invalid("vifaces: a JSON array of viface descs")
    for i, raw in enumerate(items):
        item = downkeys(raw) if isinstance(raw, dict) else None
        if not item or not item.get("name"):
            raise invalid(f"vifaces[{i}].name: each viface needs a name")
        name = str(item["name"]).replace(" ", "_")
        if any(vif.name == name for vif in c._get_vnode(vnode).vifaces):
            viface_put(c, vnode, name, item)
        else:
            doc = shapes.viface_desc({**item, "name": name}, f"vifaces[{i}]")
            c.viface_create(vnode, doc, attach=False)


def _vfilesystem(c: Coordinator, vnode: str, fs: Any) -> None:
    if not isinstance(fs, dict):
        raise invalid("vfilesystem: a JSON object {image, shared, cow}")
    if "disk_throttling" in fs:  # the vnode's disk limit, live even once it is built
        from pydistem.coordinator.compat.vfilesystem import update

        update(c, vnode, fs, "vfilesystem")
        return
    old = c._get_vnode(vnode).vfilesystem
    if old is not None:  # keep what the update does not mention
        fs = {"image": old.image, "shared": old.shared, **fs}
    c.vnode_vfilesystem(vnode, shapes.vfilesystem_desc(fs, "vfilesystem"))


def apply(c: Coordinator, names: list[str], desc: dict[str, Any]) -> None:
    """Apply a Distem vnode desc (everything but ``status``) to each vnode of ``names``."""
    given = {k for k, v in desc.items() if v not in (None, {}, "")}
    shapes.ignore_unknown("desc", desc, KNOWN)
    key = desc.get("ssh_key")
    if key not in (None, {}, "") and not isinstance(key, dict):
        raise invalid("ssh_key: an object {public, private}")
    mode = shapes.mode_desc(desc["mode"]) if "mode" in given else None
    for n in names:
        if "host" in given:
            c.vnode_host(n, str(desc["host"]))
        if "vfilesystem" in given:
            _vfilesystem(c, n, desc["vfilesystem"])
        if "vcpu" in desc or "vmem" in desc:  # {} lifts that limit
            from pydistem.coordinator.compat.limits import apply_desc

            apply_desc(c, [n], {k: desc[k] for k in ("vcpu", "vmem") if k in desc})
        if "ssh_key" in given:
            c.vnode_ssh_key(n, {k: str(key[k]) for k in ("public", "private") if key.get(k)})
        if "vifaces" in given:
            _vifaces(c, n, desc["vifaces"])
        if mode is not None:
            c.vnode_mode(n, mode)
