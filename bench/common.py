"""What every benchmark script shares: the topology's addresses, host limits, records.

The topology is the same for every tool: one L2 network (a Linux bridge) on this
machine, N vnodes with one interface each, plus one probe vnode from which the
bench checks that every vnode answers (see probe.py). Standard library only: the
Mininet script imports this module under Debian's system python3.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NETWORK = ipaddress.IPv4Network("10.150.0.0/20")
PREFIXLEN = NETWORK.prefixlen
#: the bandwidth limit put on both directions of every viface in the "shaped" runs
BANDWIDTH = "100mbit"
BANDWIDTH_MBIT = 100


def vnode_address(i: int) -> str:
    """Address of vnode ``i`` (1-based), the order pydistem's pool allocates them."""
    return str(NETWORK.network_address + i)


def probe_address() -> str:
    return str(NETWORK.broadcast_address - 1)


def vnode_addresses(n: int) -> list[str]:
    return [vnode_address(i) for i in range(1, n + 1)]


# ------------------------------------------------------------------ host limits
SYSCTL = Path("/proc/sys")


def _sysctl_path(key: str) -> Path:
    return SYSCTL / key.replace(".", "/")


def needed_sysctls(ports: int) -> dict[str, int]:
    """The host-wide limits a bridge of ``ports`` ports needs for every port to be
    pinged (the same rule the pydistem agent applies: core/agent/sysctl.py)."""
    pairs = ports * ports
    out = {"net.core.netdev_max_backlog": min(1_000_000, max(1000, 64 * ports))}
    for table in ("net.ipv4.neigh.default", "net.ipv6.neigh.default"):
        out[f"{table}.gc_thresh3"] = min(1 << 22, max(1024, 4 * pairs))
        out[f"{table}.gc_thresh2"] = min(1 << 22, max(512, 2 * pairs))
        out[f"{table}.gc_thresh1"] = min(1 << 22, max(128, pairs))
    return out


@contextlib.contextmanager
def raised_sysctls(ports: int) -> Iterator[dict[str, int]]:
    """Raise the host limits for the tools that do not (Mininet, the floor), and put
    back the original values afterwards unless someone changed them meanwhile."""
    changed: dict[str, tuple[int, int]] = {}
    try:
        for key, value in needed_sysctls(ports).items():
            path = _sysctl_path(key)
            if not path.exists():
                continue
            current = int(path.read_text().split()[0])
            if current < value:
                path.write_text(str(value))
                changed[key] = (current, value)
        yield {k: v for k, (_, v) in changed.items()}
    finally:
        for key, (original, value) in reversed(list(changed.items())):
            path = _sysctl_path(key)
            with contextlib.suppress(OSError, ValueError):
                if int(path.read_text().split()[0]) == value:
                    path.write_text(str(original))


#: what Mininet's ``fixLimits()`` raises machine-wide on every ``Mininet()`` and never
#: puts back (mininet/util.py, 2.3.0)
MININET_SYSCTLS = (
    "fs.file-max",
    "net.core.wmem_max",
    "net.core.rmem_max",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.core.netdev_max_backlog",
    "net.ipv4.neigh.default.gc_thresh1",
    "net.ipv4.neigh.default.gc_thresh2",
    "net.ipv4.neigh.default.gc_thresh3",
    "net.ipv4.route.max_size",
    "kernel.pty.max",
)


@contextlib.contextmanager
def sysctls_kept(keys: tuple[str, ...]) -> Iterator[None]:
    """Put ``keys`` back to the values they had on entry, whatever ran inside
    (Mininet's ``fixLimits`` raises host-wide limits and leaves them raised)."""
    saved = {k: _sysctl_path(k).read_text() for k in keys if _sysctl_path(k).exists()}
    try:
        yield
    finally:
        for key, text in saved.items():
            with contextlib.suppress(OSError):
                if _sysctl_path(key).read_text() != text:
                    _sysctl_path(key).write_text(text)


# ------------------------------------------------------------------ measurements
class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds`` (monotonic clock)."""

    def __enter__(self) -> Stopwatch:
        self.start = time.monotonic()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.start


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def links_named(prefix: str) -> list[str]:
    """Names of the root namespace's links that start with ``prefix``."""
    try:
        return sorted(n for n in os.listdir("/sys/class/net") if n.startswith(prefix))
    except OSError:
        return []


def wait_links_gone(prefix: str, timeout: float = 120.0) -> bool:
    """Wait until no link named ``prefix*`` is left in the root namespace."""
    deadline = time.monotonic() + timeout
    while links_named(prefix):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def emit(result: dict[str, Any]) -> None:
    """A script's result: one JSON line on stdout, prefixed so logs can surround it."""
    sys.stdout.write("BENCH-RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith("BENCH-RESULT "):
            return json.loads(line[len("BENCH-RESULT ") :])
    raise ValueError("no BENCH-RESULT line in the script's output")
