"""Distem's per-pnode routes beyond init and info: CPU algorithm (``PUT /pnodes/:p``),
quit of one pnode, its cpu and memory descriptions, and probes (not implemented).
"""

from __future__ import annotations

from typing import Any

from pydistem.coordinator.compat import shapes
from pydistem.coordinator.compat.encoding import invalid, not_found, not_implemented
from pydistem.coordinator.compat.router import Form, _desc, _route
from pydistem.coordinator.service import Coordinator
from pydistem.errors import PydistemError
from pydistem.model.specs import PNode

PROBES = (
    "probes (Distem's periodic pnode resource probes)",
    "pydistem does not sample pnode resources; use the vnodes' own tools",
)


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
        raise not_implemented(*PROBES)
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
def pnode_quit(c: Coordinator, form: Form, pnode: str) -> dict[str, Any]:
    if pnode == "probes":
        raise not_implemented(*PROBES)
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


def _probes(c: Coordinator, form: Form) -> Any:
    raise not_implemented(*PROBES)


for _method in ("POST", "PUT", "DELETE"):
    _route(_method, "/pnodes/probes")(_probes)
