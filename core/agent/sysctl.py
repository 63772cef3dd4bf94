"""Host kernel settings the agent raises for large platforms, restored by ``clean``.

A bridge floods every broadcast (ARP) to all its ports, and each veth port queues
the copy on the CPU's backlog: with 100 vnodes, ten ARP requests at once overflow
the default ``net.core.netdev_max_backlog`` of 1000 and frames are silently
dropped (see /proc/net/softnet_stat). The agent raises such limits before it
builds, journaling the original value so that ``clean`` puts it back.
"""

from __future__ import annotations

from pathlib import Path

from pydistem.agent.journal import Entry, Journal

PROC = Path("/proc/sys")


def _path(key: str) -> Path:
    return PROC / key.replace(".", "/")


def read(key: str) -> int:
    return int(_path(key).read_text().split()[0])


def ensure_at_least(key: str, value: int, journal: Journal) -> None:
    """Raise sysctl ``key`` to ``value`` if it is lower. The journal keeps the value
    found before this agent first raised it, and the value it wrote last."""
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
