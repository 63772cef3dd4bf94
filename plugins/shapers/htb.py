"""The ``htb`` shaper: HTB for rates, netem for delay/loss, through pyroute2 (no tc binary).

``input`` lives on the egress of the viface's host end; ``output`` on the egress of
an ifb device to which the host end's ingress is redirected (mirred), as Distem
does, so the vnode's netns is never touched. Plans come from :mod:`.plan`.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import TC_H_INGRESS, TC_H_ROOT

from pydistem.agent import netlink
from pydistem.agent.journal import Entry, Journal
from pydistem.errors import KernelError, NotFound, Unsupported
from pydistem.model.specs import Traffic
from pydistem.plugins.shapers import netem_dist, plan
from pydistem.plugins.shapers.base import FEATURES, Shaper
from pydistem.plugins.shapers.plan import TcObject, TcOp

#: ``input`` argument of _apply meaning "leave the input side as it is"
_KEEP: Any = object()
#: errors meaning "already gone" when deleting
_GONE = (errno.ENOENT, errno.EINVAL, errno.ENODEV)


def tc_handle(text: str) -> int:
    """``"1:"`` -> 0x10000, ``"1:2"`` -> 0x10002, ``"root"``, ``"ingress"``, ``""`` -> 0."""
    if text == "root":
        return TC_H_ROOT
    if text == "ingress":
        return TC_H_INGRESS
    if not text:
        return 0
    major, _, minor = text.partition(":")
    return (int(major or "0", 16) << 16) | int(minor or "0", 16)


def handle_text(value: int) -> str:
    """Inverse of :func:`tc_handle`."""
    if value == TC_H_ROOT:
        return "root"
    if value == TC_H_INGRESS:
        return "ingress"
    major, minor = value >> 16, value & 0xFFFF
    return f"{major:x}:" if not minor else f"{major:x}:{minor:x}"


def _kernel_error(op: str, exc: NetlinkError) -> KernelError:
    return KernelError(op, f"{os.strerror(exc.code)} ({exc})", exc.code)


class HtbShaper(Shaper):
    """Shapes vifaces with HTB + netem + ifb through pyroute2 in this process's netns.

    ``ifb_prefix`` starts the name of every ifb it creates (``pdi`` + the host end's
    suffix). The ifbs are journaled as kind ``link`` (id = name, data type=ifb),
    the kind the agent already cleans by deleting the link by name.
    """

    name = "htb"

    def __init__(self, ifb_prefix: str = "pdi") -> None:
        self.ifb_prefix = ifb_prefix
        self._features: dict[str, bool] | None = None
        self._lock = threading.Lock()
        # per host end: what apply/apply_peer_latencies last set (lost on restart:
        # the agent re-applies from the model)
        self._output: dict[str, Traffic | None] = {}
        self._peers: dict[str, dict[str, str]] = {}

    # ---------------------------------------------------------------- probing
    def probe(self) -> dict[str, bool]:
        with self._lock:
            if self._features is None:
                self._features = self._probe()
            return dict(self._features)

    def _probe(self) -> dict[str, bool]:
        ns = f"pdp{os.getpid():x}"[: plan.IFNAMSIZ]
        found = dict.fromkeys(FEATURES, False)
        try:
            netns.create(ns)
        except OSError as exc:
            raise KernelError("probe: netns create", str(exc), exc.errno) from exc
        try:
            with IPRoute(netns=ns) as ipr:
                ipr.link("add", ifname="pdpa", kind="veth", peer="pdpb")
                a = ipr.link_lookup(ifname="pdpa")[0]
                b = ipr.link_lookup(ifname="pdpb")[0]
                ipr.link("set", index=a, state="up")

                def attempt(key: str, *args: Any, **kw: Any) -> bool:
                    try:
                        ipr.tc(*args, **kw)
                    except NetlinkError:
                        return False
                    found[key] = True
                    return True

                for kind in ("htb", "tbf", "netem"):
                    params: dict[str, Any] = {}
                    if kind == "tbf":
                        params = {"rate": "1mbit", "burst": 10000, "latency": "50ms"}
                    if attempt(f"sch_{kind}", "add", kind, a, 0x10000, **params):
                        ipr.tc("del", index=a, handle=0x10000, parent=TC_H_ROOT)
                attempt("sch_ingress", "add", "ingress", a)
                try:
                    ipr.link("add", ifname="pdpi", kind="ifb")
                    found["ifb"] = True
                except NetlinkError:
                    pass
                if found["sch_ingress"]:
                    mirred = {"kind": "mirred", "direction": "egress", "action": "redirect"}
                    u32 = {"protocol": plan.ETH_P_ALL, "prio": 1, "target": 0x10001}
                    attempt(
                        "cls_u32",
                        "add-filter",
                        "u32",
                        a,
                        parent=0xFFFF0000,
                        keys=["0x0/0x0+0"],
                        **u32,
                    )
                    attempt(
                        "act_mirred",
                        "add-filter",
                        "u32",
                        a,
                        parent=0xFFFF0000,
                        keys=["0x0/0x0+0"],
                        action={**mirred, "ifindex": b},
                        **{**u32, "prio": 2},
                    )
                    attempt(
                        "cls_matchall",
                        "add-filter",
                        "matchall",
                        a,
                        parent=0xFFFF0000,
                        prio=3,
                        protocol=plan.ETH_P_ALL,
                        classid=0x10001,
                    )
        finally:
            netns.remove(ns)  # takes the veth pair, the ifb and every qdisc with it
        return found

    def _require(self, what: str, feature: str, module: str) -> None:
        if not self.probe()[feature]:
            raise Unsupported(
                f"{what} needs the kernel module {module}, which this pnode's kernel"
                f" ({os.uname().release}) does not have; load it (modprobe {module}) or"
                " use a kernel that ships it"
            )

    def _check(
        self, host: str, input: Traffic | None, output: Traffic | None, peers: Mapping[str, str]
    ) -> None:
        for field, traffic in (("input", input), ("output", output)):
            if traffic is None or traffic.is_empty():
                continue
            if plan.needs_netem(traffic):
                asked = [f for f in plan.NETEM_FIELDS if getattr(traffic, f) is not None]
                self._require(f"{field}.{asked[0]}", "sch_netem", "sch_netem")
            if traffic.bandwidth is not None:
                self._require(f"{field}.bandwidth", "sch_htb", "sch_htb")
            if traffic.jitter_distribution not in (None, "uniform"):
                try:
                    netem_dist.table(traffic.jitter_distribution)
                except Unsupported as exc:
                    raise Unsupported(f"{field}.jitter_distribution: {exc.message}") from None
        if peers:
            self._require("per-peer latencies", "sch_netem", "sch_netem")
            self._require("per-peer latencies", "sch_htb", "sch_htb")
            self._require("per-peer latencies", "cls_u32", "cls_u32")
        if _active(output) or peers:
            self._require("output shaping", "ifb", "ifb")
            self._require("output shaping", "sch_ingress", "sch_ingress")
            self._require("output shaping", "act_mirred", "act_mirred")

    # ---------------------------------------------------------------- public API
    def apply(
        self,
        host_ifname: str,
        input: Traffic | None,
        output: Traffic | None,
        journal: Journal,
        *,
        fresh: bool = False,
    ) -> None:
        peers = self._peers.get(host_ifname, {})
        self._apply(host_ifname, input, output, peers, journal, fresh=fresh)

    def apply_peer_latencies(
        self, host_ifname: str, latencies: Mapping[str, str], journal: Journal
    ) -> None:
        output = self._output.get(host_ifname)
        self._apply(host_ifname, _KEEP, output, dict(latencies), journal)

    def clear(self, host_ifname: str, journal: Journal) -> None:
        self._output.pop(host_ifname, None)
        self._peers.pop(host_ifname, None)
        ifb = plan.ifb_name(host_ifname, self.ifb_prefix)
        with netlink.open_ipr() as ipr:
            host = self._lookup(ipr, host_ifname)
            if host is not None:
                self._run(ipr, plan.plan_changes(self._dump(ipr, host), []), host_ifname)
                self._del_ingress(ipr, host)
            self._del_ifb(ipr, ifb, journal)

    def cleaners(self) -> dict[str, Callable[[Entry], None]]:
        # The ifbs are journaled as kind "link"; the agent's "link" cleaner deletes
        # a link by name. The qdiscs vanish with their devices: nothing else to clean.
        return {}

    # ---------------------------------------------------------------- executor
    def _apply(
        self,
        host_ifname: str,
        input: Any,
        output: Traffic | None,
        peers: Mapping[str, str],
        journal: Journal,
        fresh: bool = False,
    ) -> None:
        """``fresh``: the caller just created ``host_ifname``, so it has no tc object
        yet and reading its state is skipped: the kernel dumps the qdiscs of EVERY
        device of the netns for one device's, which made a deploy O(N^2)."""
        keep_input = input is _KEEP
        ifb = plan.ifb_name(host_ifname, self.ifb_prefix)
        # plans first: every ValidationError/Unsupported before the kernel is touched
        in_plan = [] if keep_input else plan.plan_direction(host_ifname, input, "input")
        out_plan = plan.plan_direction(ifb, output, "output", peers)
        self._check(host_ifname, None if keep_input else input, output, peers)
        with netlink.open_ipr() as ipr:
            host = self._lookup(ipr, host_ifname, must=True)
            assert host is not None
            if not keep_input:
                current = [] if fresh else self._dump(ipr, host)
                self._run(ipr, plan.plan_changes(current, in_plan), host_ifname)
            if out_plan:
                idx, created = self._ensure_ifb(ipr, ifb, host_ifname, journal)
                current = [] if created else self._dump(ipr, idx)
                self._run(ipr, plan.plan_changes(current, out_plan), ifb)
                if created or fresh or not self._has_ingress(ipr, host):
                    if not fresh:
                        self._del_ingress(ipr, host)
                    self._run(ipr, plan.plan_redirect(host_ifname, ifb), host_ifname)
            else:
                if not fresh:
                    self._del_ingress(ipr, host)
                self._del_ifb(ipr, ifb, journal)
        self._output[host_ifname] = output
        self._peers[host_ifname] = dict(peers)

    @staticmethod
    def _lookup(ipr: IPRoute, ifname: str, must: bool = False) -> int | None:
        index = netlink.link_index(ipr, ifname)  # by ioctl for sockets from open_ipr()
        if index is None and must:
            raise NotFound("link", ifname)
        return index

    @staticmethod
    def _dump(ipr: IPRoute, index: int) -> list[TcObject]:
        out: list[TcObject] = []
        for obj, msgs in (
            ("qdisc", ipr.get_qdiscs(index=index)),
            ("class", ipr.get_classes(index=index)),
        ):
            out.extend(
                TcObject(
                    obj,
                    msg.get_attr("TCA_KIND"),
                    handle_text(msg["handle"]),
                    handle_text(msg["parent"]),
                )
                for msg in msgs
                if msg["index"] == index
            )
        return out

    def _run(self, ipr: IPRoute, ops: list[TcOp], dev: str) -> None:
        index = self._lookup(ipr, dev, must=True)
        for op in ops:
            params = dict(op.params)
            action = params.get("action")
            if isinstance(action, Mapping) and "dev" in action:
                action = dict(action)
                action["ifindex"] = self._lookup(ipr, action.pop("dev"), must=True)
                params["action"] = action
            command = {"qdisc": "", "class": "-class", "filter": "-filter"}[op.obj]
            kw: dict[str, Any] = {"parent": tc_handle(op.parent), **params}
            if op.obj != "filter":
                kw["handle"] = tc_handle(op.handle)
            try:
                if op.op == "del" and op.obj == "filter":
                    ipr.tc("del-filter", index=index, parent=tc_handle(op.parent))
                elif op.op == "del":
                    ipr.tc(f"del{command}", index=index, handle=kw["handle"], parent=kw["parent"])
                elif op.kind == "netem" and "distribution" in kw:
                    dist = kw.pop("distribution")
                    handle, parent = kw.pop("handle"), kw.pop("parent")
                    netem_dist.replace(ipr, index, handle, parent, kw, dist)
                else:
                    ipr.tc(f"{op.op}{command}", op.kind, index, **kw)
            except NetlinkError as exc:
                if op.op == "del" and exc.code in _GONE:
                    continue
                raise _kernel_error(
                    f"tc {op.op} {op.obj} {op.kind} {op.handle} on {dev}", exc
                ) from exc

    @staticmethod
    def _has_ingress(ipr: IPRoute, index: int) -> bool:
        return any(
            m["index"] == index and m.get_attr("TCA_KIND") == "ingress"
            for m in ipr.get_qdiscs(index=index)
        )

    @staticmethod
    def _del_ingress(ipr: IPRoute, index: int) -> None:
        try:
            ipr.tc("del", index=index, handle=0xFFFF0000, parent=TC_H_INGRESS)
        except NetlinkError as exc:
            if exc.code not in _GONE:
                raise _kernel_error("tc del qdisc ingress", exc) from exc

    def _ensure_ifb(self, ipr: IPRoute, ifb: str, host: str, journal: Journal) -> tuple[int, bool]:
        journal.add("link", ifb, type="ifb", host=host, owner=self.name)  # idempotent
        index = self._lookup(ipr, ifb)
        created = False
        if index is None:
            try:
                ipr.link("add", ifname=ifb, kind="ifb")
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise _kernel_error(f"ip link add {ifb} type ifb", exc) from exc
            index = self._lookup(ipr, ifb, must=True)
            created = True
        assert index is not None
        try:
            ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            raise _kernel_error(f"ip link set {ifb} up", exc) from exc
        return index, created

    @staticmethod
    def _del_ifb(ipr: IPRoute, ifb: str, journal: Journal) -> None:
        index = HtbShaper._lookup(ipr, ifb)
        if index is not None:
            try:
                ipr.link("del", index=index)
            except NetlinkError as exc:
                if exc.code not in _GONE:
                    raise _kernel_error(f"ip link del {ifb}", exc) from exc
        journal.remove("link", ifb)


def _active(traffic: Traffic | None) -> bool:
    return traffic is not None and not traffic.is_empty()
