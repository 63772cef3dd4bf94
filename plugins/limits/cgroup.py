"""The ``cgroup`` limiter: cpuset, CFS quota and the memory cgroup, on cgroup v1 or v2.

It writes the plan of :mod:`.plan` into the vnode's cgroup folders: each file goes to the
folder that has it (v1 spreads controllers over hierarchies; v2 has one folder).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pydistem.agent.cgroups import ROOT, is_v2
from pydistem.errors import KernelError, Unsupported, ValidationError
from pydistem.model.limits import CpuLimit, MemoryLimit
from pydistem.plugins.limits.base import Limiter
from pydistem.plugins.limits.host import HostCpu, host_cpu
from pydistem.plugins.limits.plan import (
    V1_DISK_FILES,
    DiskRule,
    Write,
    parse_disk_rules,
    plan_disk,
    plan_limits,
)


def _find(dirs: list[Path], file: str) -> Path | None:
    for d in dirs:
        if (d / file).exists():
            return d / file
    return None


def _read_counters(path: Path | None) -> dict[str, int]:
    """``key value`` lines (cpu.stat, memory.events, memory.oom_control) as a dict."""
    out: dict[str, int] = {}
    if path is None:
        return out
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
    return out


class CgroupLimiter(Limiter):
    """Limits through the kernel's cgroup controllers ``cpuset``, ``cpu`` and ``memory``."""

    name = "cgroup"

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        self._host: HostCpu | None = None

    def host(self) -> HostCpu:
        if self._host is None:
            self._host = host_cpu()
        return self._host

    def v2(self) -> bool:
        return is_v2() if self.root == ROOT else (self.root / "cgroup.controllers").exists()

    def _swap_accounting(self) -> bool:
        """v1: the memsw files exist. v2: the memory controller exists (swap accounting is
        on by default; a kernel without it lacks ``memory.swap.max``, which apply names)."""
        if self.v2():
            with contextlib.suppress(OSError):
                return "memory" in (self.root / "cgroup.controllers").read_text().split()
            return False
        return (self.root / "memory" / "memory.memsw.limit_in_bytes").exists()

    def validate(self, cpu: CpuLimit | None, memory: MemoryLimit | None) -> None:
        host = self.host()
        if cpu is not None:
            if cpu.cores is not None and cpu.cores > host.count:
                raise ValidationError(
                    "cpu.cores", f"{cpu.cores} cores asked, this pnode has {host.count}"
                )
            if cpu.pcores is not None:
                off = [c for c in cpu.pcores if c not in host.cores]
                if off:
                    online = ",".join(map(str, host.cores))
                    raise ValidationError(
                        "cpu.pcores", f"cores {off} not online (online: {online})"
                    )
            if isinstance(cpu.frequency, str):
                if host.mhz <= 0:
                    raise ValidationError(
                        "cpu.frequency",
                        f"{cpu.frequency}: this pnode's frequency is unknown; give a fraction",
                    )
                if cpu.fraction(host.mhz) > 1:
                    raise ValidationError(
                        "cpu.frequency",
                        f"{cpu.frequency} is above this pnode's {host.mhz:g}MHz",
                    )
        if memory is not None and memory.swap_bytes() is not None and not self._swap_accounting():
            raise Unsupported(
                "memory.swap: this kernel has no swap accounting "
                "(memory.memsw.limit_in_bytes missing: boot with swapaccount=1)"
            )

    def apply(
        self,
        dirs: list[Path],
        cpu: CpuLimit | None,
        memory: MemoryLimit | None,
        pcores: list[int] | None,
    ) -> None:
        writes = plan_limits(cpu, memory, self.host(), pcores, self.v2())
        self._write(dirs, writes)

    def check_disk(self) -> None:
        if self.v2():
            with contextlib.suppress(OSError):
                if "io" in (self.root / "cgroup.controllers").read_text().split():
                    return
            raise Unsupported("disk: the cgroup v2 io controller is not available")
        if not (self.root / "blkio" / V1_DISK_FILES[0][0]).exists():
            raise Unsupported(
                "disk: no cgroup v1 blkio throttling (blkio.throttle.* missing: "
                "mount the blkio controller, kernel CONFIG_BLK_DEV_THROTTLING)"
            )

    def apply_disk(self, dirs: list[Path], rules: list[DiskRule]) -> None:
        v2 = self.v2()
        current: list[str] = []
        for file in ("io.max",) if v2 else tuple(f for f, _ in V1_DISK_FILES):
            path = _find(dirs, file)
            if path is not None:
                with contextlib.suppress(OSError):
                    current += parse_disk_rules(path.read_text(), v2)
        self._write(dirs, plan_disk(rules, current, v2))

    def _write(self, dirs: list[Path], writes: list[Write]) -> None:
        for w in writes:
            path = _find(dirs, w.file)
            if path is None:
                if w.optional:
                    continue
                controller = w.file.split(".", 1)[0]
                raise Unsupported(
                    f"cgroup file {w.file} missing for {', '.join(map(str, dirs)) or 'the vnode'}"
                    f" (is the {controller} controller enabled?)"
                )
            try:
                path.write_text(w.value)
            except OSError as exc:
                raise KernelError(
                    f"write {w.value} to {path}", exc.strerror or str(exc), exc.errno
                ) from None

    def usage(self, dirs: list[Path]) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.v2():
            stat = _read_counters(_find(dirs, "cpu.stat"))
            if "usage_usec" in stat:
                out["cpu_ns"] = stat["usage_usec"] * 1000
            if "nr_throttled" in stat:
                out["throttled"] = stat["nr_throttled"]
            events = _read_counters(_find(dirs, "memory.events"))
            if "oom_kill" in events:
                out["oom_kills"] = events["oom_kill"]
            current = _find(dirs, "memory.current")
            io = _find(dirs, "io.stat")
            if io is not None:
                with contextlib.suppress(OSError, ValueError):
                    for line in io.read_text().splitlines():
                        kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
                        for key, name in (
                            ("rbytes", "disk_read_bytes"),
                            ("wbytes", "disk_write_bytes"),
                        ):
                            out[name] = out.get(name, 0) + int(kv.get(key, 0))
        else:
            acct = _find(dirs, "cpuacct.usage")
            if acct is not None:
                with contextlib.suppress(OSError, ValueError):
                    out["cpu_ns"] = int(acct.read_text())
            stat = _read_counters(_find(dirs, "cpu.stat"))
            if "nr_throttled" in stat:
                out["throttled"] = stat["nr_throttled"]
            oom = _read_counters(_find(dirs, "memory.oom_control"))
            if "oom_kill" in oom:
                out["oom_kills"] = oom["oom_kill"]
            current = _find(dirs, "memory.usage_in_bytes")
            io = _find(dirs, "blkio.throttle.io_service_bytes")
            if io is not None:
                with contextlib.suppress(OSError, ValueError):
                    for line in io.read_text().splitlines():
                        parts = line.split()
                        if len(parts) == 3 and parts[1] in ("Read", "Write"):
                            name = "disk_read_bytes" if parts[1] == "Read" else "disk_write_bytes"
                            out[name] = out.get(name, 0) + int(parts[2])
        if current is not None:
            with contextlib.suppress(OSError, ValueError):
                out["memory_bytes"] = int(current.read_text())
        return out
