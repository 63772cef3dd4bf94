"""CPU, memory and disk limits of vnodes, coordinator side: Distem's vcpu and vmem
calls, and disk throttling.

``vcpu_create`` / ``vcpu_update`` / ``vcpu_remove`` / ``vcpu_info``, the same for
``vmem``, and ``vdisk_set`` / ``vdisk_remove`` / ``vdisk_info``. A change is validated
(model, then the vnode's pnode: its cores, its frequency, its disks,
its kernel) before anything changes, applied live by the pnode's agent when the vnode is
built there, and then recorded.
"""

from __future__ import annotations

from typing import Any

from pydistem.coordinator.service import Coordinator
from pydistem.errors import AlreadyExists, NotFound, ValidationError
from pydistem.model.limits import CpuLimit, DiskThrottle, MemoryLimit, parse_disk
from pydistem.model.specs import VNode
from pydistem.model.validate import parse


def _as_dict(value: Any, field: str) -> dict[str, Any]:
    if isinstance(value, CpuLimit | MemoryLimit):
        return value.model_dump(exclude_none=True)
    if isinstance(value, str | int | float) and field == "memory" and not isinstance(value, bool):
        return {"limit": value}
    if not isinstance(value, dict):
        raise ValidationError(field, "an object")
    return dict(value)


class _Keep:
    """The vnode's current value (the default of ``set_limits``'s ``disk``)."""


KEEP = _Keep()


def set_limits(
    c: Coordinator,
    name: str,
    cpu: CpuLimit | None,
    memory: MemoryLimit | None,
    disk: list[DiskThrottle] | _Keep | None = KEEP,
) -> VNode:
    """Make vnode ``name``'s limits exactly ``cpu``, ``memory`` and ``disk`` (None: no
    limit; ``disk`` left out: kept), live if it runs. Raises before changing anything
    when the pnode refuses them."""
    with c._lock:
        v = c._get_vnode(name)
        new_disk = v.disk if isinstance(disk, _Keep) else disk
        candidate = v.model_copy(update={"cpu": cpu, "memory": memory, "disk": new_disk}, deep=True)
        link = c.link(str(v.host))
        status = v.status
    if status == "INIT":
        _check_on_pnode(link, candidate)
    else:
        try:
            link.vnode_limits(name, cpu, memory, new_disk)
        except NotFound as exc:
            if exc.kind != "vnode":
                raise
            _check_on_pnode(link, candidate)  # never built on its pnode (FAILED early)
    with c._lock:
        v.cpu, v.memory, v.disk = cpu, memory, new_disk
        c._save_vnodes([name])
    return v


def _check_on_pnode(link: Any, candidate: VNode) -> None:
    try:
        link.check_vnodes([candidate])
    except ValidationError as exc:
        field = exc.field.split("].", 1)[1] if exc.field.startswith("vnodes[") else exc.field
        raise ValidationError(field, exc.reason) from None


# ---------------------------------------------------------------------------- vcpu
def vcpu_info(c: Coordinator, name: str) -> CpuLimit:
    """The vnode's CPU limit; NotFound("vcpu") when it has none."""
    v = c._get_vnode(name)
    if v.cpu is None:
        raise NotFound("vcpu", name)
    return v.cpu


def vcpu_create(c: Coordinator, name: str, data: Any) -> CpuLimit:
    """Give a vnode a CPU limit (``{cores, frequency}``); AlreadyExists if it has one."""
    v = c._get_vnode(name)
    cpu = parse(CpuLimit, _as_dict(data, "cpu"), "cpu")
    if v.cpu is not None:
        raise AlreadyExists("vcpu", name, "cpu")
    return set_limits(c, name, cpu, v.memory).cpu or cpu


def vcpu_update(c: Coordinator, name: str, data: Any) -> CpuLimit:
    """Change the given fields of a vnode's CPU limit (the others are kept)."""
    vcpu_info(c, name)
    cpu = _merged_cpu(c, name, data)
    return set_limits(c, name, cpu, c._get_vnode(name).memory).cpu or cpu


def _merged_cpu(c: Coordinator, name: str, data: Any) -> CpuLimit:
    """The vnode's CPU limit with ``data``'s fields changed (a new one when it has none)."""
    v = c._get_vnode(name)
    fields = _as_dict(data, "cpu")
    merged = {**(v.cpu.model_dump(exclude_none=True) if v.cpu else {}), **fields}
    if "cores" in fields and "pcores" not in fields:
        merged.pop("pcores", None)
    return parse(CpuLimit, merged, "cpu")


def cpu_check(c: Coordinator, name: str, data: Any) -> CpuLimit:
    """What :func:`cpu_change` would set, checked against the model and the facts the
    coordinator holds on the vnode's pnode (cores, MHz); changes nothing."""
    cpu = _merged_cpu(c, name, data)
    p = c.pnodes.get(str(c._get_vnode(name).host))
    if p is not None and p.cores and cpu.cores is not None and cpu.cores > p.cores:
        raise ValidationError("cpu.cores", f"{cpu.cores} cores asked, pnode {p.id} has {p.cores}")
    mhz = p.cpu_mhz if p is not None else 0
    if mhz and isinstance(cpu.frequency, str) and cpu.fraction(mhz) > 1:
        raise ValidationError("cpu.frequency", f"{cpu.frequency} is above the pnode's {mhz:g}MHz")
    return cpu


def cpu_change(c: Coordinator, name: str, data: Any) -> CpuLimit:
    """Change some fields of a vnode's CPU limit, creating it when it has none (what a
    timed ``cpu`` event does)."""
    cpu = cpu_check(c, name, data)
    return set_limits(c, name, cpu, c._get_vnode(name).memory).cpu or cpu


def vcpu_remove(c: Coordinator, name: str) -> CpuLimit:
    """Lift a vnode's CPU limit (every core, full speed); return the one removed."""
    old = vcpu_info(c, name)
    set_limits(c, name, None, c._get_vnode(name).memory)
    return old


# ---------------------------------------------------------------------------- vmem
def vmem_info(c: Coordinator, name: str) -> MemoryLimit:
    """The vnode's memory limit; NotFound("vmem") when it has none."""
    v = c._get_vnode(name)
    if v.memory is None:
        raise NotFound("vmem", name)
    return v.memory


def vmem_create(c: Coordinator, name: str, data: Any) -> MemoryLimit:
    """Give a vnode a memory limit (``{limit, swap}``); AlreadyExists if it has one."""
    v = c._get_vnode(name)
    memory = parse(MemoryLimit, _as_dict(data, "memory"), "memory")
    if v.memory is not None:
        raise AlreadyExists("vmem", name, "memory")
    return set_limits(c, name, v.cpu, memory).memory or memory


def vmem_update(c: Coordinator, name: str, data: Any) -> MemoryLimit:
    """Change the given fields of a vnode's memory limit; creates it when there is none."""
    v = c._get_vnode(name)
    old = v.memory.model_dump(exclude_none=True) if v.memory else {}
    memory = parse(MemoryLimit, {**old, **_as_dict(data, "memory")}, "memory")
    return set_limits(c, name, v.cpu, memory).memory or memory


def vmem_remove(c: Coordinator, name: str) -> MemoryLimit:
    """Lift a vnode's memory limit; return the one removed."""
    old = vmem_info(c, name)
    set_limits(c, name, c._get_vnode(name).cpu, None)
    return old


# ---------------------------------------------------------------------------- disk
def vdisk_info(c: Coordinator, name: str) -> list[DiskThrottle]:
    """The vnode's disk throttles; NotFound("disk") when it has none."""
    v = c._get_vnode(name)
    if not v.disk:
        raise NotFound("disk", name)
    return v.disk


def vdisk_set(c: Coordinator, name: str, data: Any) -> list[DiskThrottle]:
    """Replace the vnode's disk throttles (one object or a list, one per device; an
    empty one lifts them), live if it runs."""
    v = c._get_vnode(name)
    disk = parse_disk(data)
    set_limits(c, name, v.cpu, v.memory, disk)
    return disk or []


def vdisk_remove(c: Coordinator, name: str) -> list[DiskThrottle]:
    """Lift every disk throttle of the vnode; return those removed."""
    old = vdisk_info(c, name)
    v = c._get_vnode(name)
    set_limits(c, name, v.cpu, v.memory, None)
    return old


def limits_info(c: Coordinator, name: str) -> dict[str, Any]:
    """Limits, cores held, pnode CPU and usage, as the vnode's agent reports them (a
    vnode not built yet: its limits only)."""
    v = c._get_vnode(name)
    if v.status == "INIT":
        return {
            "cpu": v.cpu.model_dump() if v.cpu else None,
            "memory": v.memory.model_dump() if v.memory else None,
            "disk": [t.model_dump() for t in v.disk] if v.disk else None,
            "pcores": None,
            "cgroups": [],
            "usage": {},
        }
    return dict(c.link(str(v.host)).vnode_limits_info(name))
