"""The contract of a link-shaping plugin (stevedore group ``pydistem.shapers``).

A shaper limits each viface of a vnode per direction, as Distem does: ``input`` is
what the vnode receives, ``output`` what it sends. It works on the host end of the
viface's veth pair (in the pnode's root netns) and never enters the vnode's netns.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import ClassVar

from pydistem.agent.journal import Entry, Journal
from pydistem.model.specs import Traffic

#: kernel features a shaper may report from :meth:`Shaper.probe`
FEATURES = (
    "sch_htb",
    "sch_tbf",
    "sch_netem",
    "sch_ingress",
    "ifb",
    "act_mirred",
    "cls_u32",
    "cls_matchall",
)


class Shaper(abc.ABC):
    """One way of shaping vifaces. Instances are made once per agent and are
    thread-compatible (the agent serialises calls per viface)."""

    name: ClassVar[str]

    @abc.abstractmethod
    def probe(self) -> dict[str, bool]:
        """Which kernel features this pnode has (keys of :data:`FEATURES`), found by
        really creating them in a throwaway netns that is removed afterwards.
        Cached: only the first call touches the kernel. Raises KernelError only if
        the throwaway netns itself cannot be made."""

    @abc.abstractmethod
    def apply(
        self,
        host_ifname: str,
        input: Traffic | None,
        output: Traffic | None,
        journal: Journal,
        *,
        fresh: bool = False,
    ) -> None:
        """Make ``host_ifname``'s shaping exactly ``input``/``output`` (None or empty =
        no limit), replacing whatever was set before; per-peer latencies set with
        :meth:`apply_peer_latencies` are kept. Idempotent, and safe on a live vnode
        with traffic flowing (objects are changed in place when the layout allows).
        ``fresh=True`` says the caller has just created ``host_ifname``: it carries no
        tc object yet, so the shaper may skip reading its state (the agent passes it
        when it builds a vnode; reading costs a dump of every device's qdiscs).

        Raises, BEFORE changing anything: ValidationError(field, reason) for a
        contradictory spec (``output.jitter`` without a latency), Unsupported when
        the kernel lacks a module the spec needs (sch_netem, ifb...), NotFound
        when ``host_ifname`` does not exist. Raises KernelError when the kernel
        refuses an operation midway (what was created is journaled)."""

    @abc.abstractmethod
    def apply_peer_latencies(
        self, host_ifname: str, latencies: Mapping[str, str], journal: Journal
    ) -> None:
        """Distem's ``set_peers_latencies``: what the vnode sends to each destination
        IPv4 address gets that one-way latency (``{"10.0.0.2": "20ms"}``) instead of
        ``output.latency``; the rest of ``output`` (bandwidth shared by all, loss...)
        still applies. An empty mapping removes them. Idempotent; raises as
        :meth:`apply` does."""

    @abc.abstractmethod
    def clear(self, host_ifname: str, journal: Journal) -> None:
        """Remove every limit of ``host_ifname`` (both directions, peers) and the ifb
        it used. Idempotent: a viface without shaping, or already gone, is fine."""

    def cleaners(self) -> dict[str, Callable[[Entry], None]]:
        """For each journal ``kind`` this shaper records, how to remove one such
        object from its entry alone (after a crash). Idempotent."""
        return {}
