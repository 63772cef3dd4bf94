"""Can each machine's uplink carry classic vnetworks? One foreign-MAC probe round over SSH.

Classic vnetworks put vnode MAC addresses on the machines' network; the virtual NICs of
Xen/KVM guests drop frames for MACs that are not their own. Bootstrap runs one round of
the probe of ``agent/l2probe.py`` on every machine's uplink (the interface holding the
address its sshd accepted us on): all machines listen, then all send, then the listeners
are told to stop. A machine that hears nobody, or that nobody hears, fails the probe.
The verdict goes into the pnode's ``features`` as ``l2:<uplink>``, which the coordinator
then trusts instead of probing again (core/coordinator/networks.py).
"""

from __future__ import annotations

import json
import secrets
import shlex
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydistem.bootstrap.daemons import ssh_server_address
from pydistem.bootstrap.options import MachinePaths
from pydistem.bootstrap.report import StepFailed
from pydistem.bootstrap.ssh import Result, Session

READY_WAIT = 30.0  # seconds for every listener to start receiving (python starts slowly)
LISTEN_LIMIT = 120.0  # a listener never outlives this, even if the stop file never comes


@dataclass
class Uplink:
    """One machine's part of the round: its uplink, whom it heard, or why it could not."""

    interface: str | None = None
    heard: set[str] = field(default_factory=set)
    error: str | None = None


@dataclass(frozen=True)
class Verdict:
    interface: str | None
    carries_foreign_macs: bool | None  # None: not probed (error, or a single machine)
    why: str


def judge(uplinks: dict[str, Uplink]) -> dict[str, Verdict]:
    """Who can do classic mode: a machine that heard at least one other machine, and that
    at least one other machine heard. Pure, for unit tests."""
    probed = [mid for mid, u in uplinks.items() if u.error is None]
    out: dict[str, Verdict] = {}
    for mid, u in uplinks.items():
        if u.error is not None:
            out[mid] = Verdict(u.interface, None, f"the uplink probe failed: {u.error}")
            continue
        others = [o for o in probed if o != mid]
        if not others:
            out[mid] = Verdict(u.interface, None, "not probed: no other machine to probe with")
            continue
        hears = sorted(u.heard & set(others))
        heard_by = sorted(o for o in others if mid in uplinks[o].heard)
        if hears and heard_by:
            why = f"carries foreign MACs (heard {len(hears)}, heard by {len(heard_by)})"
            out[mid] = Verdict(u.interface, True, why)
        elif not hears:
            why = "drops frames for foreign MACs (heard none of the other machines)"
            out[mid] = Verdict(u.interface, False, why)
        else:
            why = "its frames with a foreign MAC never arrive (no other machine heard it)"
            out[mid] = Verdict(u.interface, False, why)
    return out


def probe(machines: Sequence[tuple[str, Session, MachinePaths]]) -> dict[str, Uplink]:
    """One probe round over ``(machine id, root session, paths)``: listen everywhere,
    wait until every listener receives, send everywhere, stop the listeners. Never
    raises for one machine's trouble: that machine's :class:`Uplink` has ``error``."""
    nonce = secrets.token_hex(4)
    uplinks = {mid: Uplink() for mid, _, _ in machines}
    addresses: dict[str, str] = {}

    def address(mid: str, session: Session) -> None:
        try:
            addresses[mid] = ssh_server_address(session)
        except StepFailed as exc:
            uplinks[mid].error = exc.reason

    with ThreadPoolExecutor(max(1, min(32, len(machines)))) as pool:
        list(pool.map(lambda m: address(m[0], m[1]), machines))
    live = [(mid, s, p) for mid, s, p in machines if mid in addresses]
    marks = {mid: f"/tmp/pydistem-l2probe-{nonce}-{i}" for i, (mid, _, _) in enumerate(live)}

    def py(paths: MachinePaths, *args: str) -> str:
        words = [paths.python, "-m", "pydistem.bootstrap.remote", *args]
        return " ".join(shlex.quote(w) for w in words)

    def listen(mid: str, session: Session, paths: MachinePaths) -> None:
        expect = str(len(live) - 1)
        cmd = py(paths, "l2-listen", addresses[mid], nonce, expect, str(LISTEN_LIMIT), marks[mid])
        try:
            data = _json(session.run(cmd, root=True, timeout=LISTEN_LIMIT + 30))
        except StepFailed as exc:
            data = {"error": exc.reason}
        u = uplinks[mid]
        u.interface = data.get("interface")
        u.heard = set(data.get("heard") or ())
        if "error" in data or "heard" not in data:
            u.error = str(data.get("error") or "no answer from the listener")

    def send(mid: str, session: Session, paths: MachinePaths) -> None:
        try:
            data = _json(session.run(py(paths, "l2-send", addresses[mid], nonce, mid), root=True))
        except StepFailed as exc:
            data = {"error": exc.reason}
        if "error" in data and uplinks[mid].error is None:
            uplinks[mid].error = f"sending: {data['error']}"

    sessions = {mid: session for mid, session, _ in live}
    threads = {m[0]: threading.Thread(target=listen, args=m, daemon=True) for m in live}
    for t in threads.values():
        t.start()
    with ThreadPoolExecutor(max(1, min(32, len(live))), thread_name_prefix="l2probe") as pool:
        waiting = set(threads)
        deadline = time.monotonic() + READY_WAIT
        while waiting and time.monotonic() < deadline:
            checks = {
                mid: pool.submit(_ok, sessions[mid], f"test -e {shlex.quote(marks[mid])}.ready")
                for mid in waiting
            }
            waiting = {
                mid for mid, f in checks.items() if not f.result() and threads[mid].is_alive()
            }
            if waiting:
                time.sleep(0.2)
        list(pool.map(lambda m: send(*m), live))
        time.sleep(0.5)  # frames in flight
        stop = [mid for mid, t in threads.items() if t.is_alive()]
        list(pool.map(lambda mid: _ok(sessions[mid], f"touch {marks[mid]}.stop"), stop))
    for t in threads.values():
        t.join(LISTEN_LIMIT + 60)
    with ThreadPoolExecutor(max(1, min(32, len(live))), thread_name_prefix="l2probe") as pool:
        # a listener that ended by itself as its stop file was made leaves that file
        list(pool.map(lambda mid: _ok(sessions[mid], f"rm -f {marks[mid]}.*"), sessions))
    return uplinks


def _ok(session: Session, command: str) -> bool:
    try:
        return session.run(command, root=True).ok
    except StepFailed:
        return False


def _json(result: Result) -> dict[str, Any]:
    """The JSON line a remote command printed last, or ``{"error": why}``."""
    lines = result.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if lines else None
    except ValueError:
        data = None
    return data if isinstance(data, dict) else {"error": result.why()}
