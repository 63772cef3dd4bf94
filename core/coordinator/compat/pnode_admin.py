"""Distem's per-pnode routes beyond init and info: CPU algorithm (``PUT /pnodes/:p``),
quit of one pnode, its cpu and memory descriptions, and probes (``/pnodes/probes``,
through :mod:`pydistem.coordinator.probes`).
"""

from __future__ import annotations

from typing import Any

from pydistem.coordinator import probes
from pydistem.coordinator.compat import shapes
from pydistem.coordinator.compat.encoding import invalid, json_field, not_found
from pydistem.coordinator.compat.router import Form, _desc, _route
from pydistem.coordinator.service import Coordinator
from pydistem.errors import PydistemError
from pydistem.model.specs import PNode


def _pnode(c: Coordinator, name: str) -> tuple[int, PNode]:
    try:
        pid = c.resolve_pnode(name, "pnode")
    except PydistemError:
        raise not_found(f"pnode {name}") from None
    if pid not in c.pnodes:
        raise not_found(f"pnode {name}")
    return list(c.pnodes).index(pid), c.pnodes[pid]


@_route("PUT", "/pnodes/{pnode}")
def pnode_update(c: Coordinator, form: Form, pnode: str) -> Any:
    if pnode == "probes":
        return probes_state(c, form)
    _pnode(c, pnode)
    algorithms = _desc(form).get("algorithms")
    if algorithms in (None, {}):
        return ""
    if not isinstance(algorithms, dict):
        raise invalid('algorithms: an object like {"cpu": "gov"}')
    cpu = algorithms.get("cpu")
    if cpu is None:
        return ""
    value = str(cpu).lower()
    if value not in ("hogs", "gov"):
        raise invalid(f"algorithms.cpu: {cpu!r} is not hogs or gov")
    c.pnode_update(pnode, value)
    return {"algorithms": {"cpu": value.upper()}}


@_route("DELETE", "/pnodes/{pnode}")
def pnode_quit(c: Coordinator, form: Form, pnode: str) -> Any:
    if pnode == "probes":
        return probes_delete(c, form)
    index, p = _pnode(c, pnode)
    c.pnode_quit(p.id)
    return shapes.pnode(p, index, "READY")


@_route("GET", "/pnodes/{pnode}/cpu")
def pcpu_info(c: Coordinator, form: Form, pnode: str) -> dict[str, Any]:
    index, p = _pnode(c, pnode)
    return shapes.pnode(p, index)["cpu"]  # type: ignore[no-any-return]


@_route("GET", "/pnodes/{pnode}/memory")
def pmemory_info(c: Coordinator, form: Form, pnode: str) -> dict[str, Any]:
    index, p = _pnode(c, pnode)
    return shapes.pnode(p, index)["memory"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- probes
@_route("POST", "/pnodes/probes")
def probes_launch(c: Coordinator, form: Form) -> str:
    """``desc`` ``{"ProbeBW": {"frequency": 1, "name": "bw", "interface": "eth0"}}``
    (also ``bw``, ``loadavg``, ``cpu``, ``memory``); ``ref_time`` is the coordinator's
    own clock here."""
    desc = json_field(form, "desc", None)
    if desc in (None, {}):
        raise invalid('desc: the probes, like {"bw": {"frequency": 1}}')
    probes.launch(c, desc)
    return ""


def probes_state(c: Coordinator, form: Form) -> str:
    """``state=stop`` pauses the probes; any other state restarts them, as in Distem."""
    probes.set_state(c, "stop" if form.get("state") == "stop" else "restart")
    return ""


def probes_delete(c: Coordinator, form: Form) -> str:
    probes.delete(c)
    return ""


def probes_data(c: Coordinator) -> dict[str, Any]:
    """``{pnode hostname: {probe name: [[time, [values...]], ...]}}``."""
    data = probes.data(c)
    return {c.pnodes[pid].hostname or c.pnodes[pid].address: d for pid, d in data.items()}
