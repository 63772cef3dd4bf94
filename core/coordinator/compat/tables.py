"""Distem's platform-wide helpers: ``/peers_matrix_latencies``, ``/global_etchosts``,
``/global_arptable``, translated to :mod:`pydistem.coordinator.platform_tables`.

Distem answered these with 200 and an empty body; so do we on success. Errors follow
the usual convention (Distem sent them as a 200 with text, which its client could not
parse): a kernel without ``sch_netem`` answers 501 naming the module.
"""

from __future__ import annotations

from typing import Any

from pydistem.coordinator import platform_tables
from pydistem.coordinator.compat.encoding import invalid, json_field, names_list
from pydistem.coordinator.compat.router import Form, _check, _route
from pydistem.coordinator.service import Coordinator


@_route("POST", "/peers_matrix_latencies")
def set_peers_latencies(c: Coordinator, form: Form) -> Any:
    names = names_list(json_field(form, "vnodes"), "vnodes")
    if not names:
        raise invalid("vnodes: a JSON array of the vnode names of the matrix rows")
    matrix = json_field(form, "matrix")
    if matrix is None:
        raise invalid("matrix: a JSON N x N array of latencies in ms")
    platform_tables.set_peers_latencies(c, names, matrix)
    return ""


@_route("POST", "/global_etchosts")
def set_global_etchosts(c: Coordinator, form: Form) -> Any:
    _check(platform_tables.set_global_etchosts(c))
    return ""


@_route("POST", "/global_arptable")
def set_global_arptable(c: Coordinator, form: Form) -> Any:
    _check(platform_tables.set_global_arptable(c))
    return ""
