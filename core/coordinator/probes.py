"""Pnode probes, coordinator side: launch, stop, restart, delete them on every pnode,
and collect their data (Distem's ``pnodes_*_probes``).

Every call fans out to the agents of all initialised pnodes in parallel. ``launch``
gives each agent the coordinator's clock (``ref_time``) so that sample times of
different pnodes are comparable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydistem.coordinator.agents import AgentLink
from pydistem.coordinator.service import Coordinator
from pydistem.errors import PydistemError
from pydistem.model.probes import Probe, parse_probes


def _each(c: Coordinator, fn: Callable[[AgentLink], Any]) -> dict[str, Any]:
    """``fn(link)`` on every pnode in parallel: pnode id -> result. The first pnode
    error is raised after all have answered."""
    pnodes = list(c.pnodes)

    def one(pid: str) -> tuple[str, Any, PydistemError | None]:
        try:
            return pid, fn(c.link(pid)), None
        except PydistemError as exc:
            return pid, None, exc

    out: dict[str, Any] = {}
    first: PydistemError | None = None
    for pid, result, exc in c._fanout.map(one, pnodes):
        out[pid] = result
        first = first or exc
    if first is not None:
        raise first
    return out


def launch(c: Coordinator, desc: Any) -> list[Probe]:
    """Start ``desc``'s probes on every pnode (replacing those running, and their data).
    ``desc``: a list of probes or Distem's ``{type: {frequency, name, interface}}``.
    Raises ValidationError before any pnode is touched when ``desc`` is bad."""
    probes = parse_probes(desc)
    ref = time.time()
    _each(c, lambda link: link.probes_launch(probes, ref))
    return probes


def set_state(c: Coordinator, state: str) -> None:
    """``stop`` pauses every pnode's probes (data kept); ``restart`` resumes them."""
    _each(c, lambda link: link.probes_state(state))


def delete(c: Coordinator) -> None:
    """Stop the probes of every pnode and forget their data. Idempotent."""
    _each(c, lambda link: link.probes_delete())


def data(c: Coordinator) -> dict[str, dict[str, list[list[Any]]]]:
    """pnode id -> ``{probe name: [[time, [values...]], ...]}``."""
    return _each(c, lambda link: link.probes_data())
