"""Link shaping as data: what tc objects one viface needs, computed without touching a kernel.

``plan_direction`` turns one direction's Traffic (plus per-peer latencies) into the
qdiscs/classes/filters of one device's egress; ``plan_redirect`` sends a host end's
ingress to an ifb; ``plan_changes`` diffs a desired tree against what a device holds.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydistem.errors import ValidationError
from pydistem.model import units
from pydistem.model.specs import Traffic

IFNAMSIZ = 15  # usable characters of an interface name
#: bytes of a full-size Ethernet frame, used to turn byte sizes into packet counts
FRAME = 1514
#: rate given to the HTB classes when only per-peer latencies are asked (no bandwidth)
UNLIMITED_BITS = 100e9
#: link rate assumed to size a netem queue when no bandwidth is given
ASSUMED_BITS = 1e9
#: time worth of traffic a default leaf queue holds (when ``queue`` is not given)
DEFAULT_QUEUE_S = 0.1
MIN_QUEUE_PKTS = 32
MAX_QUEUE_PKTS = 100_000
NETEM_MIN_LIMIT = 1000  # tc's own default netem limit
#: netem fields of Traffic, in the order they are checked
NETEM_FIELDS = ("latency", "jitter", "loss", "duplication", "corruption", "reordering")

ROOT_HANDLE = "1:"
TOP_CLASS = "1:1"  # carries the bandwidth cap
DEFAULT_CLASS = "1:2"  # unclassified traffic (everything when there are no peers)
DEFAULT_NETEM = "10:"
DEFAULT_FIFO = "20:"
PEER_BASE = 0x100  # peer i: class 1:(0x100+i), its netem (0x100+i):
INGRESS_HANDLE = "ffff:"
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800


@dataclass(frozen=True)
class TcOp:
    """One tc operation on one device, in pyroute2's vocabulary.

    ``obj`` is qdisc, class or filter; ``handle``/``parent`` use tc notation
    (``"1:"``, ``"1:2"``, ``"root"``, ``"ingress"``). ``params`` are the keyword
    arguments of ``IPRoute.tc`` (rates as ``"<n>bit"`` strings, times in µs,
    percents as floats). A mirred action names its target device with ``dev``;
    the executor turns it into an ifindex.
    """

    op: Literal["add", "replace", "del"]
    obj: Literal["qdisc", "class", "filter"]
    kind: str
    dev: str
    handle: str = ""
    parent: str = "root"
    params: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class TcObject:
    """A qdisc or class a device holds now (from a dump), for :func:`plan_changes`."""

    obj: Literal["qdisc", "class"]
    kind: str
    handle: str
    parent: str


def needs_netem(traffic: Traffic | None) -> bool:
    """Whether this direction asks for something only sch_netem can do."""
    return traffic is not None and any(getattr(traffic, f) is not None for f in NETEM_FIELDS)


def ifb_name(host_ifname: str, prefix: str = "pdi") -> str:
    """The ifb device carrying ``host_ifname``'s output: ``prefix`` + the host name's
    suffix after its own 3-letter prefix (``pdv1a2b`` -> ``pdi1a2b``), or a hash
    when that would not fit in IFNAMSIZ or would equal the host name."""
    name = prefix + host_ifname[3:]
    if len(name) <= IFNAMSIZ and name != host_ifname and len(host_ifname) > 3:
        return name
    digest = hashlib.sha1(host_ifname.encode()).hexdigest()
    return prefix + digest[: IFNAMSIZ - len(prefix)]


def _bits_str(bits: float) -> str:
    return f"{max(1, round(bits))}bit"


def _queue_pkts(traffic: Traffic, field: str) -> int | None:
    if traffic.queue is None:
        return None
    return max(1, math.ceil(units.parse_size(f"{field}.queue", traffic.queue) / FRAME))


def _default_queue(bits: float) -> int:
    pkts = math.ceil(bits / 8 * DEFAULT_QUEUE_S / FRAME)
    return min(MAX_QUEUE_PKTS, max(MIN_QUEUE_PKTS, pkts))


def netem_params(
    traffic: Traffic, field: str, rate_bits: float | None, latency: str | None = None
) -> dict[str, Any]:
    """pyroute2 netem keywords for ``traffic``; ``latency`` overrides its latency
    (per-peer). Raises ValidationError for jitter or reordering without a latency."""
    delay_s = units.parse_duration(f"{field}.latency", latency or traffic.latency or 0)
    params: dict[str, Any] = {}
    if delay_s:
        params["delay"] = round(delay_s * 1e6)
    jitter_s = 0.0
    if traffic.jitter is not None:
        jitter_s = units.parse_duration(f"{field}.jitter", traffic.jitter)
        if not delay_s:
            raise ValidationError(f"{field}.jitter", "needs a latency")
        if jitter_s:
            params["jitter"] = round(jitter_s * 1e6)
    if traffic.jitter_distribution is not None:
        if traffic.jitter is None:
            raise ValidationError(f"{field}.jitter_distribution", "needs a jitter")
        if traffic.jitter_distribution != "uniform":
            # sent as a table by the shaper (netem_dist); uniform needs none
            params["distribution"] = traffic.jitter_distribution
    for name, key in (
        ("loss", "loss"),
        ("duplication", "duplicate"),
        ("corruption", "prob_corrupt"),
        ("reordering", "prob_reorder"),
    ):
        value = getattr(traffic, name)
        if value is not None:
            pct = units.parse_percent(f"{field}.{name}", value)
            if pct:
                params[key] = pct
    if "prob_reorder" in params and not delay_s:
        raise ValidationError(f"{field}.reordering", "needs a latency")
    in_flight = math.ceil((rate_bits or ASSUMED_BITS) / 8 * (delay_s + jitter_s) / FRAME)
    queue = _queue_pkts(traffic, field)
    if queue is None:
        queue = _default_queue(rate_bits) if rate_bits else NETEM_MIN_LIMIT
    params["limit"] = min(MAX_QUEUE_PKTS, max(NETEM_MIN_LIMIT, in_flight + queue))
    return params


def _check_peers(field: str, peers: Mapping[str, str]) -> list[tuple[str, str]]:
    out = []
    for ip, latency in peers.items():
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError as exc:
            raise ValidationError(f"{field}.peers", f"{ip!r} is not an IPv4 address") from exc
        units.parse_duration(f"{field}.peers.{ip}", latency)
        out.append((str(addr), latency))
    out.sort(key=lambda p: ipaddress.IPv4Address(p[0]))
    if len(out) > 0xFFFF - PEER_BASE:
        raise ValidationError(f"{field}.peers", f"at most {0xFFFF - PEER_BASE} peers")
    return out


def plan_direction(
    ifname: str,
    traffic: Traffic | None,
    field: str = "output",
    peers: Mapping[str, str] | None = None,
) -> list[TcOp]:
    """The egress tree of ``ifname`` for one direction, as ``replace`` ops, parents first.

    No limit (None, empty, no peers) gives ``[]``: the device keeps its default qdisc.
    Netem alone: a root netem. Queue alone: a root pfifo. Otherwise an HTB tree:
    ``1:`` -> ``1:1`` (the cap) -> ``1:2`` (default leaf, with netem ``10:`` or pfifo
    ``20:``) and one class ``1:(0x100+i)`` + netem per peer, chosen by a u32 filter on
    the destination address. ``field`` prefixes error fields (``output.jitter``).
    Raises ValidationError (jitter/reordering without latency, bad peer) and
    Unsupported (a distribution table this host lacks).
    """
    traffic = traffic if traffic is not None and not traffic.is_empty() else None
    peer_list = _check_peers(field, peers or {})
    if traffic is None and not peer_list:
        return []
    t = traffic or Traffic()
    rate = units.parse_rate(f"{field}.bandwidth", t.bandwidth) if t.bandwidth else None
    netem = needs_netem(t)
    queue = _queue_pkts(t, field)
    if rate is None and not peer_list:
        if netem:
            params = netem_params(t, field, None)
            return [TcOp("replace", "qdisc", "netem", ifname, DEFAULT_NETEM, "root", params)]
        return [TcOp("replace", "qdisc", "pfifo", ifname, DEFAULT_FIFO, "root", {"limit": queue})]

    cap = rate or UNLIMITED_BITS
    share = cap / (len(peer_list) + 1)
    ops = [
        TcOp("replace", "qdisc", "htb", ifname, ROOT_HANDLE, "root", {"default": 0x2}),
        TcOp("replace", "class", "htb", ifname, TOP_CLASS, ROOT_HANDLE, _htb_class(cap, cap)),
        TcOp("replace", "class", "htb", ifname, DEFAULT_CLASS, TOP_CLASS, _htb_class(share, cap)),
    ]
    if netem:
        params = netem_params(t, field, rate)
        ops.append(TcOp("replace", "qdisc", "netem", ifname, DEFAULT_NETEM, DEFAULT_CLASS, params))
    else:
        limit = queue if queue is not None else _default_queue(cap)
        ops.append(
            TcOp("replace", "qdisc", "pfifo", ifname, DEFAULT_FIFO, DEFAULT_CLASS, {"limit": limit})
        )
    filters = []
    for i, (ip, latency) in enumerate(peer_list):
        minor = PEER_BASE + i
        klass = f"1:{minor:x}"
        ops.append(
            TcOp("replace", "class", "htb", ifname, klass, TOP_CLASS, _htb_class(share, cap))
        )
        params = netem_params(t, f"{field}.peers.{ip}", rate, latency=latency)
        ops.append(TcOp("replace", "qdisc", "netem", ifname, f"{minor:x}:", klass, params))
        key = f"0x{int(ipaddress.IPv4Address(ip)):08x}/0xffffffff+16"
        filters.append(
            TcOp(
                "add",
                "filter",
                "u32",
                ifname,
                "",
                ROOT_HANDLE,
                {"protocol": ETH_P_IP, "prio": 1, "target": 0x10000 + minor, "keys": [key]},
            )
        )
    return ops + filters


def _htb_class(rate_bits: float, ceil_bits: float) -> dict[str, Any]:
    # burst: 1 ms worth at the ceiling plus one frame (tc's rate/HZ + mtu, HZ=1000)
    return {
        "rate": _bits_str(rate_bits),
        "ceil": _bits_str(ceil_bits),
        "burst": math.ceil(ceil_bits / 8 / 1000) + FRAME,
        "cburst": math.ceil(ceil_bits / 8 / 1000) + FRAME,
    }


def plan_redirect(host_ifname: str, ifb: str) -> list[TcOp]:
    """Ingress qdisc on the host end plus a match-all u32 filter whose mirred action
    redirects every packet the vnode sends to the egress of ``ifb``."""
    action = {"kind": "mirred", "direction": "egress", "action": "redirect", "dev": ifb}
    return [
        TcOp("replace", "qdisc", "ingress", host_ifname, INGRESS_HANDLE, "ingress"),
        TcOp(
            "add",
            "filter",
            "u32",
            host_ifname,
            "",
            INGRESS_HANDLE,
            {
                "protocol": ETH_P_ALL,
                "prio": 1,
                "target": 0x10001,
                "keys": ["0x0/0x0+0"],
                "action": action,
            },
        ),
    ]


#: qdiscs a device has before anyone shapes it (handle 0:, never ours)
DEFAULT_KINDS = frozenset({"noqueue", "pfifo_fast", "mq", "fq_codel", "fq", "pfifo"})


def plan_changes(current: list[TcObject], desired: list[TcOp]) -> list[TcOp]:
    """Ops that turn a device's egress from ``current`` into ``desired``.

    Same root (kind and handle): delete what is stale (peer classes, a leaf whose
    kind changed), replace every desired qdisc/class in place (traffic keeps
    flowing), and swap the filters. Different root: delete the root, then add.
    ``desired == []``: delete our root, if any. Pure; deletions come first.
    """
    dev = desired[0].dev if desired else None
    root = next((o for o in current if o.obj == "qdisc" and o.parent == "root"), None)
    ours = root is not None and not (root.handle in ("0:", "") and root.kind in DEFAULT_KINDS)
    if not desired:
        return [TcOp("del", "qdisc", root.kind, "", root.handle, "root")] if ours else []
    want_root = desired[0]
    assert dev is not None
    if not ours or root is None or (root.kind, root.handle) != (want_root.kind, want_root.handle):
        pre = [TcOp("del", "qdisc", root.kind, dev, root.handle, "root")] if ours and root else []
        return pre + [
            TcOp("add", o.obj, o.kind, o.dev, o.handle, o.parent, o.params) for o in desired
        ]
    wanted = {(o.obj, o.handle): o for o in desired if o.obj != "filter"}
    stale: list[TcOp] = []
    for o in current:
        if o.parent == "root" or o.parent == "ingress":
            continue
        want = wanted.get((o.obj, o.handle))
        if want is None or want.kind != o.kind or want.parent != o.parent:
            stale.append(TcOp("del", o.obj, o.kind, dev, o.handle, o.parent))
    # qdiscs before classes, deepest classes (peers, then default) before the top one
    stale.sort(key=lambda op: (op.obj != "qdisc", op.handle == TOP_CLASS))
    filters = [o for o in desired if o.obj == "filter"]
    unhook = [TcOp("del", "filter", "", dev, "", ROOT_HANDLE)] if want_root.kind == "htb" else []
    # the HTB qdisc itself cannot be changed (the kernel has no change op for it) and
    # its parameters are constant here: keep it
    keep = {o for o in current if o.obj == "qdisc" and o.kind == "htb"}
    changes = [
        o
        for o in desired
        if o.obj != "filter" and TcObject(o.obj, o.kind, o.handle, o.parent) not in keep
    ]
    return unhook + stale + changes + filters
