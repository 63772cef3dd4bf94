"""What each event action does, through the coordinator's own services (one engine).

An action is a pair of functions: ``check(coordinator, event, field, vnode)`` raises
ValidationError or Unsupported before anything is scheduled (``vnode`` is the target,
maybe only planned by a deploy), ``apply(coordinator,
event)`` does it and returns a detail for the log. ``register`` adds or replaces one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydistem.errors import PydistemError, Unsupported, ValidationError
from pydistem.events.model import NONE, Event

if TYPE_CHECKING:
    from pydistem.coordinator.service import Coordinator
    from pydistem.model.specs import VNode


@dataclass(frozen=True)
class Action:
    apply: Callable[[Coordinator, Event], str]
    check: Callable[[Coordinator, Event, str, VNode], None] = lambda c, e, f, v: None


ACTIONS: dict[str, Action] = {}


def register(name: str, action: Action) -> None:
    """Add or replace the implementation of an event action."""
    ACTIONS[name] = action


def lookup(name: str) -> Action:
    try:
        return ACTIONS[name]
    except KeyError:
        raise Unsupported(f"{name} events are not available in this pydistem") from None


# ---------------------------------------------------------------------------- vnodes


def _batch(fn_name: str) -> Callable[[Coordinator, Event], str]:
    def apply(c: Coordinator, ev: Event) -> str:
        result = getattr(c, fn_name)([ev.vnode])
        error = result.get(ev.vnode)
        if error:
            raise PydistemError(error)
        v = c.vnodes.get(ev.vnode)
        return f"status {v.status}" if v is not None else ""

    return apply


for _name, _fn in (
    ("stop", "vnodes_stop"),
    ("start", "vnodes_start"),
    ("freeze", "vnodes_freeze"),
    ("unfreeze", "vnodes_unfreeze"),
):
    register(_name, Action(_batch(_fn)))


# ---------------------------------------------------------------------------- vifaces


def _merged(current: Any, changes: dict[str, str]) -> dict[str, Any] | None:
    doc = current.model_dump(exclude_none=True) if current is not None else {}
    for key, value in changes.items():
        if value == NONE:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc or None


def _traffic(c: Coordinator, ev: Event) -> str:
    """Change only the given limits of the chosen direction(s); keep the others."""
    v = c._get_vnode(ev.vnode)
    vif = next((i for i in v.vifaces if i.name == ev.viface), None)
    if vif is None:
        raise ValidationError("viface", f"vnode {ev.vnode} has no viface {ev.viface!r}")
    changes = ev.traffic or {}
    both = ev.direction == "both"
    tin = _merged(vif.input, changes) if both or ev.direction == "input" else _dump(vif.input)
    tout = _merged(vif.output, changes) if both or ev.direction == "output" else _dump(vif.output)
    c.viface_traffic(ev.vnode, str(ev.viface), tin, tout)
    return f"input={tin or {}} output={tout or {}}"


def _dump(t: Any) -> dict[str, Any] | None:
    return None if t is None else t.model_dump(exclude_none=True)


def _check_traffic(c: Coordinator, ev: Event, field: str, v: VNode) -> None:
    """The limits after the change must still be valid as a whole."""
    from pydistem.model.specs import Traffic
    from pydistem.model.validate import parse

    vif = next((i for i in v.vifaces if i.name == ev.viface), None)
    if vif is None:
        return
    for direction in ("input", "output"):
        if ev.direction in (direction, "both"):
            doc = _merged(getattr(vif, direction), ev.traffic or {})
            if doc:
                parse(Traffic, doc, f"{field}.traffic")


def _link(up: bool) -> Callable[[Coordinator, Event], str]:
    def apply(c: Coordinator, ev: Event) -> str:
        c.viface_link(ev.vnode, str(ev.viface), up)
        return "link up" if up else "link down"

    return apply


register("traffic", Action(_traffic, _check_traffic))
register("viface_down", Action(_link(False)))
register("viface_up", Action(_link(True)))


# ---------------------------------------------------------------------------- cpu


def _sub(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _cpu(c: Coordinator, ev: Event) -> str:
    c.vnode_cpu_update(ev.vnode, ev.cpu or {})
    return ", ".join(f"{k}={v}" for k, v in (ev.cpu or {}).items())


def _check_cpu(c: Coordinator, ev: Event, field: str, v: VNode) -> None:
    """What the event sets must be a valid CPU limit on the vnode's pnode (cores, speed);
    for a vnode a deploy only plans, a valid CPU limit (its pnode checks it when applied)."""
    from pydistem.model.limits import CpuLimit
    from pydistem.model.validate import parse

    if v.name in c.vnodes:
        try:
            c.vnode_cpu_check(ev.vnode, ev.cpu or {})
        except ValidationError as exc:
            raise ValidationError(_sub(field, f"cpu.{exc.field}"), exc.reason) from None
        return
    old = v.cpu.model_dump(exclude_none=True) if v.cpu else {}
    parse(CpuLimit, {**old, **(ev.cpu or {})}, _sub(field, "cpu"))


register("cpu", Action(_cpu, _check_cpu))


# ---------------------------------------------------------------------------- memory


def _memory(c: Coordinator, ev: Event) -> str:
    c.vnode_memory_update(ev.vnode, ev.memory or {})
    return ", ".join(f"{k}={v}" for k, v in (ev.memory or {}).items())


def _check_memory(c: Coordinator, ev: Event, field: str, v: VNode) -> None:
    """The vnode's memory limit after the change must be valid (as vmem_update does it)."""
    from pydistem.model.limits import MemoryLimit
    from pydistem.model.validate import parse

    old = v.memory.model_dump(exclude_none=True) if v.memory else {}
    parse(MemoryLimit, {**old, **(ev.memory or {})}, _sub(field, "memory"))


register("memory", Action(_memory, _check_memory))


# ---------------------------------------------------------------------------- disk


def _disk(c: Coordinator, ev: Event) -> str:
    from pydistem.coordinator import limits

    limits.vdisk_set(c, ev.vnode, ev.disk or [])
    return ev.describe()


def _check_disk(c: Coordinator, ev: Event, field: str, v: VNode) -> None:
    """The throttles are valid (the model checked them); two for one device are refused.
    Devices are checked by the pnode when the event is applied."""
    from pydistem.model.limits import check_disk

    check_disk(ev.disk or [], _sub(field, "disk"))


register("disk", Action(_disk, _check_disk))
