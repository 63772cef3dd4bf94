"""``wait_vnodes``: poll vnodes until they run, answer a command and, when asked,
have a TCP port open (Distem's semantics: ``port``, default 22).

A vnode is ready when it is ``RUNNING`` and a shell command succeeds in it; then,
with ``port``, when that TCP port is open on its default address; with ``ssh``
(Distem's default port 22 without an explicit port), when port 22 is open on the
vnodes whose image has an SSH server (``sshd`` or ``dropbear``; vnodes without an
image, e.g. ``netns`` ones, have none): an image without one
could never open it, and pydistem runs commands without SSH. Ports are tried by the
vnode's pnode agent from inside the vnode's network namespace (agent/ports.py).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING

from pydistem.errors import PydistemError

if TYPE_CHECKING:
    from pydistem.coordinator.service import Coordinator

#: run in a vnode: succeeds once the vnode answers; prints something when its image
#: has an SSH server
HAS_SSH_SERVER = (
    "command -v sshd dropbear 2>/dev/null;"
    " ls /usr/sbin/sshd /usr/sbin/dropbear /sbin/dropbear /usr/bin/dropbear 2>/dev/null; true"
)


def wait_vnodes(
    c: Coordinator, names: list[str], timeout: float, port: int | None, ssh: bool
) -> list[str]:
    """Poll until every vnode of ``names`` is ready (see the module) or ``timeout``
    seconds passed, or one of them FAILED; return those not ready."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    wants: dict[str, int | None] = {}  # vnode -> the port it must open, once known

    def alive(n: str) -> bool:
        v = c.vnodes.get(n)
        if v is None or v.status != "RUNNING":
            return False
        try:
            r = c.vnode_execute(n, ["/bin/sh", "-c", HAS_SSH_SERVER], 10)
        except PydistemError:
            return False
        if r.exit_code != 0:
            return False
        if n not in wants:  # the SSH rule looks at the vnode's own image only
            has_sshd = ssh and v.vfilesystem is not None and bool(r.stdout.strip())
            wants[n] = port if port is not None else (22 if has_sshd else None)
        return True

    while True:
        up = [n for n, ok in zip(pending, c._fanout.map(alive, pending), strict=True) if ok]
        waiting = set(pending) - set(up)
        waiting |= _ports_closed(c, {n: p for n in up if (p := wants.get(n)) is not None})
        pending = [n for n in pending if n in waiting]
        if not pending or time.monotonic() >= deadline:
            return pending
        if any(c.vnodes.get(n) is not None and c.vnodes[n].status == "FAILED" for n in pending):
            return pending
        time.sleep(0.5 if any(wants.values()) else 0.2)


def _ports_closed(c: Coordinator, wants: dict[str, int]) -> set[str]:
    """The vnodes of ``wants`` (vnode -> port) whose port is not open yet."""
    groups: dict[tuple[str, int], list[str]] = defaultdict(list)
    for n, p in wants.items():
        v = c.vnodes.get(n)
        if v is not None and v.host:
            groups[(str(v.host), p)].append(n)

    def one(item: tuple[tuple[str, int], list[str]]) -> set[str]:
        (host, p), ns = item
        try:
            answers = c.link(host).vnodes_port_open(ns, p)
        except PydistemError:
            return set(ns)
        return {n for n in ns if not answers.get(n)}

    closed: set[str] = set(wants) - {n for ns in groups.values() for n in ns}
    for part in c._fanout.map(one, list(groups.items())):
        closed |= part
    return closed
