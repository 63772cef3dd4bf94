"""Control groups for vnode processes, on cgroup v1 (one tree per controller) or v2.

A :class:`CGroup` is one vnode's group across the controllers pydistem uses;
it can take processes, list them, kill them all, freeze them and be removed.
Limits (CPU, memory) are set by the emulation plugins through :meth:`write`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from pathlib import Path

from pydistem.agent.journal import Entry, Journal
from pydistem.errors import KernelError

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "blkio")
#: v2 controllers a vnode group needs enabled in its parent (limits, process count, disk)
V2_CONTROLLERS = ("cpu", "cpuset", "memory", "pids", "io")


def is_v2() -> bool:
    return (ROOT / "cgroup.controllers").exists()


class CGroup:
    """One top-level group ``<name>`` in every available hierarchy (names start ``pd``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        if is_v2():
            self.dirs = [ROOT / name]
        else:
            self.dirs = [ROOT / c / name for c in V1_CONTROLLERS if (ROOT / c).is_dir()]

    @property
    def procs_dir(self) -> Path:
        return self.dirs[0]

    def create(self, journal: Journal) -> None:
        """Create the group everywhere (idempotent), journaled as kind ``cgroup``."""
        journal.add("cgroup", self.name, dirs=[str(d) for d in self.dirs])
        for d in self.dirs:
            try:
                if is_v2():
                    enable_controllers(d.parent)
                d.mkdir(exist_ok=True)
                if d.parent.name == "cpuset" and not is_v2():
                    inherit_cpuset(d)
            except OSError as exc:
                raise KernelError(
                    f"create cgroup {d}", exc.strerror or str(exc), exc.errno
                ) from None

    def add_pid_paths(self) -> list[str]:
        """The ``cgroup.procs`` files a new process must be written to."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> list[int]:
        out: set[int] = set()
        for d in self.dirs:
            with contextlib.suppress(FileNotFoundError):
                out.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        return sorted(out)

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every process of the group and wait until none is left."""
        deadline = time.monotonic() + timeout
        self.thaw()
        while True:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise KernelError(f"kill cgroup {self.name}", f"processes left: {pids}")
            time.sleep(0.01)

    def _freezer(self) -> tuple[Path, str, str] | None:
        if is_v2():
            return (self.dirs[0] / "cgroup.freeze", "1", "0")
        for d in self.dirs:
            if d.parent.name == "freezer":
                return (d / "freezer.state", "FROZEN", "THAWED")
        return None

    def freeze(self) -> None:
        f = self._freezer()
        if f is None:
            raise KernelError(f"freeze {self.name}", "no freezer cgroup controller")
        f[0].write_text(f[1])

    def thaw(self) -> None:
        f = self._freezer()
        if f is not None and f[0].exists():
            f[0].write_text(f[2])

    def remove(self, journal: Journal | None = None) -> None:
        """Kill what runs and remove the group (idempotent)."""
        self.kill_all()
        remove_dirs([str(d) for d in self.dirs])
        if journal is not None:
            journal.remove("cgroup", self.name)


def enable_controllers(parent: Path) -> None:
    """v2: make the CPU, cpuset, memory, pids and io controllers available to ``parent``'s
    children (``cgroup.subtree_control``), those the kernel offers. Idempotent."""
    offered = set((parent / "cgroup.controllers").read_text().split())
    enabled = set((parent / "cgroup.subtree_control").read_text().split())
    missing = [c for c in V2_CONTROLLERS if c in offered and c not in enabled]
    if missing:
        (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in missing))


def inherit_cpuset(group: Path) -> None:
    """v1: a new cpuset group has no cores nor memory nodes (no process may join it):
    copy its parent's. Idempotent."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not (group / name).read_text().strip():
            (group / name).write_text((group.parent / name).read_text().strip())


def remove_dirs(dirs: list[str]) -> None:
    for d in dirs:
        for attempt in range(50):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or attempt == 49:
                    raise KernelError(f"remove cgroup {d}", exc.strerror or "", exc.errno) from None
                time.sleep(0.02)


def clean_cgroup(entry: Entry) -> None:
    group = CGroup(entry.id)
    group.dirs = [Path(d) for d in entry.data.get("dirs", [])] or group.dirs
    group.kill_all()
    remove_dirs([str(d) for d in group.dirs])
