"""Host kernel settings the agent raises for large platforms, restored by ``clean``.

A bridge floods every broadcast (ARP) to all its ports, and each veth port queues
the copy on the CPU's backlog: with 100 vnodes, ten ARP requests at once overflow
the default ``net.core.netdev_max_backlog`` of 1000 and frames are silently
dropped (see /proc/net/softnet_stat).

The neighbour (ARP/NDP) table is one table for the whole host, shared by every
network namespace: with its defaults (gc_thresh3 = 1024 entries) 100 vnodes that
all talk to each other need 100 x 100 entries, the kernel logs "neighbor table
overflow!" and drops packets while it waits for room. The agent sizes it too.

It raises such limits before it builds, journaling the original value so that
``clean`` puts it back. Several agents on one machine (tags) share these limits: each
records its claim in a host-wide registry (``/run/pydistem/sysctl``), the kernel gets
the largest claim, and the original value returns with the last claim.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydistem.agent.journal import Entry, Journal

PROC = Path("/proc/sys")


def _path(key: str) -> Path:
    return PROC / key.replace(".", "/")


def read(key: str) -> int:
    return int(_path(key).read_text().split()[0])


#: host-wide record of what each agent on this machine needs: several agents (tags)
#: share one kernel, and none may lower a limit another one still needs
CLAIMS = Path("/run/pydistem/sysctl")


@contextlib.contextmanager
def _registry(key: str) -> Iterator[dict[str, Any]]:
    """The claims on ``key`` under a host-wide lock; saved (or removed when empty) after."""
    CLAIMS.mkdir(parents=True, exist_ok=True)
    path = CLAIMS / f"{key}.json"
    with (CLAIMS / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            doc = {}
        yield doc
        if doc.get("claims"):
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, path)
        else:
            path.unlink(missing_ok=True)


def ensure_at_least(key: str, value: int, journal: Journal) -> None:
    """Hold sysctl ``key`` at ``value`` at least, for this agent (its journal).

    The kernel gets the largest value any agent on the machine claims. The value found
    before the first agent raised it is kept host-wide and comes back when the last
    claim goes (:func:`clean_sysctl`). A key already high enough on its own is not
    claimed; a key this kernel (or network namespace) does not have is left alone."""
    if not _path(key).exists():
        return
    me = str(journal.path)
    with _registry(key) as reg:
        current = read(key)
        claims: dict[str, int] = reg.setdefault("claims", {})
        if current >= value and not claims:
            return
        reg.setdefault("original", current)
        reg.setdefault("written", current)
        claims[me] = max(value, claims.get(me, 0))
        target = max(reg["original"], *claims.values())
        if current < target:
            _path(key).write_text(str(target))
            reg["written"] = target
        mine = {e.id: e for e in journal.live("sysctl")}.get(key)
        if mine is not None:
            journal.remove("sysctl", key)
        journal.add("sysctl", key, original=reg["original"], value=reg["written"], claim=me)


def clean_sysctl(entry: Entry) -> None:
    """Drop this agent's claim: the kernel gets the largest claim left, or the value it
    had before any agent raised it — unless someone outside pydistem changed it since,
    in which case it is theirs."""
    key, me = entry.id, entry.data.get("claim")
    if not _path(key).exists():
        return
    if me is None:  # journaled before claims existed
        if read(key) == entry.data.get("value", read(key)):
            _path(key).write_text(str(entry.data["original"]))
        return
    with _registry(key) as reg:
        claims: dict[str, int] = reg.setdefault("claims", {})
        claims.pop(me, None)
        current = read(key)
        written = reg.get("written", entry.data.get("value"))
        if current != written:
            return  # changed by someone else since: leave it
        original = reg.get("original", entry.data["original"])
        target = max([original, *claims.values()])
        if target != current:
            _path(key).write_text(str(target))
            reg["written"] = target


NEIGH_TABLES = ("net.ipv4.neigh.default", "net.ipv6.neigh.default")
CEILING = 1 << 22


def size_for_platform(
    ports_by_vnetwork: Iterable[str], journal: Journal, members: Mapping[str, int] | None = None
) -> None:
    """Raise the backlog and the neighbour tables for a platform whose vifaces are
    attached to the given vnetworks (one item per viface on this pnode). ``members``:
    vnetwork -> its vifaces on all pnodes (a vnetwork spanning pnodes)."""
    counts = Counter(ports_by_vnetwork)
    ports = sum(counts.values())
    ensure_at_least("net.core.netdev_max_backlog", min(1_000_000, max(1000, 64 * ports)), journal)
    # every viface here may learn every other viface of its vnetwork, here or elsewhere
    total = members or {}
    pairs = sum(n * max(n, total.get(net, n)) for net, n in counts.items())
    for table in NEIGH_TABLES:
        # thresh3 is the hard limit; keep thresh1 >= pairs so that live entries are never
        # garbage-collected, and the three in increasing order
        ensure_at_least(f"{table}.gc_thresh3", min(CEILING, max(1024, 4 * pairs)), journal)
        ensure_at_least(f"{table}.gc_thresh2", min(CEILING, max(512, 2 * pairs)), journal)
        ensure_at_least(f"{table}.gc_thresh1", min(CEILING, max(128, pairs)), journal)
