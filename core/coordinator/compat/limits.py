"""Distem's vcpu and vmem routes, each translated to :mod:`pydistem.coordinator.limits`.

``POST|PUT|DELETE|GET /vnodes/:v/cpu`` and ``POST|PUT|DELETE|GET /vnodes/:v/vmem``.
Unlike Distem's coordinator, ``GET /vnodes/:v/cpu`` and ``POST /vnodes/:v/vmem`` work
(they answered 500 there); ``DELETE`` and ``GET`` of vmem are pydistem additions.
"""

from __future__ import annotations

from typing import Any

from pydistem.coordinator import limits
from pydistem.coordinator.compat import vresources
from pydistem.coordinator.compat.encoding import DistemError, json_field, not_found
from pydistem.coordinator.compat.router import Form, _desc, _get_vnode, _route
from pydistem.coordinator.service import Coordinator
from pydistem.errors import NotFound
from pydistem.model.limits import CpuLimit, MemoryLimit
from pydistem.model.validate import parse


def vcpu_shape(c: Coordinator, name: str) -> dict[str, Any] | None:
    """The vnode's vcpu object, with the cores its agent pinned it to when it runs."""
    v = _get_vnode(c, name)
    p = c.pnodes.get(str(v.host))
    held = None
    if v.cpu is not None and v.status not in ("INIT",):
        try:
            held = limits.limits_info(c, name).get("pcores")
        except NotFound:
            held = None
    return vresources.vcpu(v.cpu, p.cores if p else 0, p.cpu_mhz if p else 0.0, held)


def _raw_desc(form: Form) -> Any:
    return json_field(form, "desc", {})


@_route("POST", "/vnodes/{vnode}/cpu")
def vcpu_create(c: Coordinator, form: Form, vnode: str) -> Any:
    _get_vnode(c, vnode)
    limits.vcpu_create(c, vnode, vresources.cpu_from_desc(_desc(form)))
    return vcpu_shape(c, vnode)


@_route("PUT", "/vnodes/{vnode}/cpu")
def vcpu_update(c: Coordinator, form: Form, vnode: str) -> Any:
    v = _get_vnode(c, vnode)
    if v.cpu is None:
        raise not_found(f"vcpu of vnode {vnode}")
    fields = vresources.cpu_from_desc(_desc(form), old=v.cpu)
    limits.set_limits(c, vnode, parse(CpuLimit, fields, "vcpu"), v.memory)
    return vcpu_shape(c, vnode)


@_route("GET", "/vnodes/{vnode}/cpu")
def vcpu_info(c: Coordinator, form: Form, vnode: str) -> Any:
    if _get_vnode(c, vnode).cpu is None:
        raise DistemError(404, "UninitializedResourceError", f"vcpu of vnode {vnode}")
    return vcpu_shape(c, vnode)


@_route("DELETE", "/vnodes/{vnode}/cpu")
def vcpu_remove(c: Coordinator, form: Form, vnode: str) -> Any:
    if _get_vnode(c, vnode).cpu is None:
        raise not_found(f"vcpu of vnode {vnode}")
    shape = vcpu_shape(c, vnode)
    limits.vcpu_remove(c, vnode)
    return shape


def _memory(form: Form) -> MemoryLimit | None:
    fields = vresources.memory_from_desc(_desc(form))
    return None if fields is None else parse(MemoryLimit, fields, "vmem")


@_route("POST", "/vnodes/{vnode}/vmem")
def vmem_create(c: Coordinator, form: Form, vnode: str) -> Any:
    v = _get_vnode(c, vnode)
    memory = _memory(form)
    if memory is None:
        raise DistemError(400, "InvalidParameterError", "vmem.mem: the memory size is required")
    limits.vmem_create(c, vnode, memory)
    return vresources.vmem(c.vnodes[v.name].memory)


@_route("PUT", "/vnodes/{vnode}/vmem")
def vmem_update(c: Coordinator, form: Form, vnode: str) -> str:
    """Replace the vmem (an empty desc lifts it); Distem answers an empty body."""
    v = _get_vnode(c, vnode)
    limits.set_limits(c, vnode, v.cpu, _memory(form))
    return ""


@_route("GET", "/vnodes/{vnode}/vmem")
def vmem_info(c: Coordinator, form: Form, vnode: str) -> Any:
    v = _get_vnode(c, vnode)
    if v.memory is None:
        raise DistemError(404, "UninitializedResourceError", f"vmem of vnode {vnode}")
    return vresources.vmem(v.memory)


@_route("DELETE", "/vnodes/{vnode}/vmem")
def vmem_remove(c: Coordinator, form: Form, vnode: str) -> Any:
    v = _get_vnode(c, vnode)
    if v.memory is None:
        raise not_found(f"vmem of vnode {vnode}")
    shape = vresources.vmem(v.memory)
    limits.vmem_remove(c, vnode)
    return shape


def apply_desc(c: Coordinator, names: list[str], desc: dict[str, Any]) -> None:
    """``vcpu``/``vmem`` keys of a vnode update desc: replace those limits of ``names``."""
    for n in names:
        v = _get_vnode(c, n)
        cpu, memory = v.cpu, v.memory
        if "vcpu" in desc:
            raw = desc["vcpu"]
            cpu = (
                None
                if raw in (None, {})
                else parse(CpuLimit, vresources.cpu_from_desc(raw, old=v.cpu), "vcpu")
            )
        if "vmem" in desc:
            raw = desc["vmem"]
            fields = None if raw in (None, {}) else vresources.memory_from_desc(raw)
            memory = None if fields is None else parse(MemoryLimit, fields, "vmem")
        limits.set_limits(c, n, cpu, memory)
