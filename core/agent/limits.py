"""The agent's side of CPU, memory and disk limits: which cores each vnode holds, which
disk its throttles apply to, and when the limits plugin (group ``pydistem.limits``,
default ``cgroup``) writes them.

Limits are applied right after a runtime starts a vnode and again on every live change;
the cores a vnode is pinned to are picked here, the least used of the pnode first, and
kept in ``<workdir>/pcores.json`` so a restarted agent still knows them.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydistem.errors import PydistemError, ValidationError
from pydistem.model.limits import CpuLimit, DiskThrottle, MemoryLimit
from pydistem.model.specs import VNode
from pydistem.plugins.limits import blockdev
from pydistem.plugins.limits.base import Limiter
from pydistem.plugins.limits.cores import pick_cores
from pydistem.plugins.limits.plan import DiskRule

Disk = list[DiskThrottle] | None


def disk_rules(disk: Disk, workdir: Path) -> list[DiskRule]:
    """``disk`` resolved to kernel devices: a throttle without ``device`` applies to the
    disk holding ``workdir`` (the vnode's folder, where its rootfs lives). Raises
    ValidationError naming ``disk[i].device``."""
    out = []
    for i, t in enumerate(disk or []):
        dev = blockdev.resolve(t.device, workdir, f"disk[{i}].device")
        if any(r.dev == dev for r in out):
            raise ValidationError(f"disk[{i}].device", f"device {dev} is throttled twice")
        out.append(DiskRule(dev, t.read_bps(), t.write_bps(), t.read_iops, t.write_iops))
    return out


class LimitsKeeper:
    """Core allocation and limit application for the vnodes of one agent. Thread-safe."""

    def __init__(self, load: Callable[[], Limiter]) -> None:
        self._load = load
        self._limiter: Limiter | None = None
        self._pcores: dict[str, list[int]] = {}
        self._disked: set[str] = set()  # vnodes whose cgroups may hold disk rules
        self._lock = threading.Lock()

    @property
    def limiter(self) -> Limiter:
        """The plugin, loaded the first time a vnode has limits."""
        if self._limiter is None:
            self._limiter = self._load()
        return self._limiter

    # ------------------------------------------------------------------ state
    def load(self, name: str, workdir: Path) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._pcores[name] = [int(c) for c in json.loads((workdir / "pcores.json").read_text())]

    def pcores(self, name: str) -> list[int] | None:
        with self._lock:
            held = self._pcores.get(name)
            return list(held) if held is not None else None

    def forget(self, name: str | None = None) -> None:
        """Drop the cores of vnode ``name`` (None: of every vnode)."""
        with self._lock:
            if name is None:
                self._pcores.clear()
                self._disked.clear()
            else:
                self._pcores.pop(name, None)
                self._disked.discard(name)

    def holds(self, name: str) -> bool:
        """Vnode ``name`` holds cores or disk rules (its cgroups need writing on a start)."""
        return name in self._pcores or name in self._disked

    # ------------------------------------------------------------------ checks
    def validate(
        self,
        cpu: CpuLimit | None,
        memory: MemoryLimit | None,
        disk: Disk = None,
        workdir: Path | None = None,
    ) -> None:
        """ValidationError / Unsupported for limits this pnode cannot give; touches nothing.
        ``workdir``: the vnode's folder (where the rootfs lives), for disk throttles."""
        if cpu is not None or memory is not None:
            self.limiter.validate(cpu, memory)
        if disk:
            self.limiter.check_disk()
            disk_rules(disk, workdir or Path("/"))

    def _cores_for(self, name: str, cpu: CpuLimit | None) -> list[int] | None:
        """The cores vnode ``name`` is pinned to under ``cpu`` (None: all), allocated."""
        if cpu is None or cpu.cores is None:
            return None
        if cpu.pcores is not None:
            return list(cpu.pcores)
        host = self.limiter.host()
        held = self._pcores.get(name)
        if held is not None and len(held) == cpu.cores and set(held) <= set(host.cores):
            return held
        others = [c for n, c in self._pcores.items() if n != name]
        return pick_cores(cpu.cores, host.cores, others)

    # ------------------------------------------------------------------ apply
    def apply(self, vnode: VNode, dirs: list[Path], workdir: Path) -> None:
        """Write ``vnode.cpu``/``vnode.memory`` into ``dirs`` (its running cgroups; none:
        only record the cores). Raises as :meth:`Limiter.apply`."""
        with self._lock:
            cores = self._cores_for(vnode.name, vnode.cpu)
            if cores is None:
                self._pcores.pop(vnode.name, None)
            else:
                self._pcores[vnode.name] = cores
        if workdir.is_dir():
            (workdir / "pcores.json").write_text(json.dumps(cores))
        if dirs:
            self.limiter.apply(dirs, vnode.cpu, vnode.memory, cores)
            if vnode.disk or vnode.name in self._disked:
                self.limiter.apply_disk(dirs, disk_rules(vnode.disk, workdir))
        with self._lock:
            if vnode.disk:
                self._disked.add(vnode.name)
            elif dirs:
                self._disked.discard(vnode.name)

    def change(
        self,
        vnode: VNode,
        cpu: CpuLimit | None,
        memory: MemoryLimit | None,
        dirs: list[Path],
        workdir: Path,
        disk: Disk = None,
    ) -> None:
        """Live change: validate, apply; if the kernel refuses midway, put the old limits
        back (best effort) and raise. ``vnode`` is updated only on success."""
        self.validate(cpu, memory, disk, workdir)
        old_cpu, old_memory, old_cores = vnode.cpu, vnode.memory, self.pcores(vnode.name)
        candidate = vnode.model_copy(update={"cpu": cpu, "memory": memory, "disk": disk})
        try:
            self.apply(candidate, dirs, workdir)
        except PydistemError:
            with self._lock:
                if old_cores is None:
                    self._pcores.pop(vnode.name, None)
                else:
                    self._pcores[vnode.name] = old_cores
            if dirs:
                with contextlib.suppress(PydistemError):
                    self.limiter.apply(dirs, old_cpu, old_memory, old_cores)
                    self.limiter.apply_disk(dirs, disk_rules(vnode.disk, workdir))
            raise
        vnode.cpu, vnode.memory, vnode.disk = cpu, memory, disk

    def info(self, vnode: VNode, dirs: list[Path]) -> dict[str, Any]:
        """The limits of ``vnode``, the cores it holds, this pnode's CPU, and its usage."""
        host = self.limiter.host()
        return {
            "cpu": vnode.cpu.model_dump() if vnode.cpu else None,
            "memory": vnode.memory.model_dump() if vnode.memory else None,
            "disk": [t.model_dump() for t in vnode.disk] if vnode.disk else None,
            "pcores": self.pcores(vnode.name),
            "pnode_cores": host.count,
            "pnode_mhz": host.mhz,
            "cgroups": [str(d) for d in dirs],
            "usage": self.limiter.usage(dirs) if dirs else {},
        }


def check_field(prefix: str, exc: ValidationError) -> ValidationError:
    """``exc`` with its field under ``prefix`` (``vnodes[0]`` + ``cpu.cores``)."""
    return ValidationError(f"{prefix}.{exc.field}" if prefix else exc.field, exc.reason)
