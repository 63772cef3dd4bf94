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
``clean`` puts it back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydistem.agent.journal import Entry, Journal

PROC = Path("/proc/sys")


def _path(key: str) -> Path:
    return PROC / key.replace(".", "/")


def read(key: str) -> int:
    return int(_path(key).read_text().split()[0])


def ensure_at_least(key: str, value: int, journal: Journal) -> None:
    """Raise sysctl ``key`` to ``value`` if it is lower. The journal keeps the value
    found before this agent first raised it, and the value it wrote last. A key this
    kernel does not have (IPv6 disabled, say) is left alone."""
    if not _path(key).exists():
        return
    current = read(key)
    if current >= value:
        return
    mine = {e.id: e for e in journal.live("sysctl")}.get(key)
    original = mine.data["original"] if mine is not None else current
    if mine is not None:
        journal.remove("sysctl", key)
    journal.add("sysctl", key, original=original, value=value)
    _path(key).write_text(str(value))


def clean_sysctl(entry: Entry) -> None:
    """Restore the value a sysctl had before the agent raised it — unless someone
    (another agent) changed it since, in which case it is theirs to restore."""
    if read(entry.id) == entry.data.get("value", read(entry.id)):
        _path(entry.id).write_text(str(entry.data["original"]))


NEIGH_TABLES = ("net.ipv4.neigh.default", "net.ipv6.neigh.default")
CEILING = 1 << 22


def size_for_platform(ports_by_vnetwork: Iterable[str], journal: Journal) -> None:
    """Raise the backlog and the neighbour tables for a platform whose vifaces are
    attached to the given vnetworks (one item per viface)."""
    counts = Counter(ports_by_vnetwork)
    ports = sum(counts.values())
    ensure_at_least("net.core.netdev_max_backlog", min(1_000_000, max(1000, 64 * ports)), journal)
    # every viface may learn every other viface of its vnetwork
    pairs = sum(n * n for n in counts.values())
    for table in NEIGH_TABLES:
        # thresh3 is the hard limit; keep thresh1 >= pairs so that live entries are never
        # garbage-collected, and the three in increasing order
        ensure_at_least(f"{table}.gc_thresh3", min(CEILING, max(1024, 4 * pairs)), journal)
        ensure_at_least(f"{table}.gc_thresh2", min(CEILING, max(512, 2 * pairs)), journal)
        ensure_at_least(f"{table}.gc_thresh1", min(CEILING, max(128, pairs)), journal)
