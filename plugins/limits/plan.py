"""CPU and memory limits planned as data: the cgroup files to write, in order.

``plan_limits`` is pure (unit-tested as data); :mod:`.cgroup` writes the plan into a
vnode's cgroup folders. cgroup v1 and v2 name the same knobs differently:

=================  ===========================================  ===========================
knob               v1 (one hierarchy per controller)            v2 (unified)
=================  ===========================================  ===========================
cores (pinning)    ``cpuset.cpus``                              ``cpuset.cpus``
speed (CFS)        ``cpu.cfs_period_us`` + ``cpu.cfs_quota_us``  ``cpu.max`` = "quota period"
memory             ``memory.limit_in_bytes``                    ``memory.max``
swap               ``memory.memsw.limit_in_bytes`` = mem+swap   ``memory.swap.max`` = swap
soft memory        ``memory.soft_limit_in_bytes``               ``memory.low``
disk bytes/s       ``blkio.throttle.{read,write}_bps_device``   ``io.max`` ``rbps`` ``wbps``
disk IO/s          ``blkio.throttle.{read,write}_iops_device``  ``io.max`` ``riops`` ``wiops``
=================  ===========================================  ===========================
"""

from __future__ import annotations

from dataclasses import dataclass

from pydistem.model.limits import CpuLimit, MemoryLimit
from pydistem.plugins.limits.host import HostCpu, format_cpu_list

#: CFS period: 100 ms, the kernel's default (docker's --cpus uses it too)
PERIOD_US = 100_000
#: the kernel refuses a quota below 1 ms
MIN_QUOTA_US = 1_000
#: v1 "no limit" for memory files (the kernel rounds it to its page-aligned maximum)
V1_UNLIMITED = "-1"


@dataclass(frozen=True)
class Write:
    """Write ``value`` to the cgroup file ``file``; ``optional`` files may be missing
    (a removal of a limit the kernel cannot even express)."""

    file: str
    value: str
    optional: bool = False


def quota_us(fraction: float, cores: int, period_us: int = PERIOD_US) -> int | None:
    """CFS quota for ``cores`` cores at ``fraction`` of their speed; None = no quota."""
    if fraction >= 1:
        return None
    return max(MIN_QUOTA_US, round(fraction * cores * period_us))


def plan_cpu(
    cpu: CpuLimit | None, host: HostCpu, pcores: list[int] | None, v2: bool
) -> list[Write]:
    """Pin to ``pcores`` (None: every core) and cap at the vnode's frequency."""
    cpus = format_cpu_list(list(pcores) if pcores else list(host.cores))
    quota = None
    if cpu is not None:
        n = len(pcores) if pcores else host.count
        quota = quota_us(cpu.fraction(host.mhz), n)
    if v2:
        q = "max" if quota is None else str(quota)
        return [Write("cpuset.cpus", cpus), Write("cpu.max", f"{q} {PERIOD_US}")]
    return [
        Write("cpuset.cpus", cpus),
        Write("cpu.cfs_period_us", str(PERIOD_US)),
        Write("cpu.cfs_quota_us", "-1" if quota is None else str(quota)),
    ]


def plan_memory(memory: MemoryLimit | None, v2: bool) -> list[Write]:
    """The memory limit, the swap allowed on top of it and the soft limit (None: none)."""
    limit = memory.limit_bytes() if memory else None
    swap = memory.swap_bytes() if memory else None
    soft = memory.soft_bytes() if memory else None
    if v2:
        return [
            Write("memory.max", "max" if limit is None else str(limit)),
            Write("memory.swap.max", "max" if swap is None else str(swap), optional=swap is None),
            Write("memory.low", "0" if soft is None else str(soft), optional=soft is None),
        ]
    # memsw >= limit at every step: lift memsw first, set the limit, then memsw
    out = [
        Write("memory.memsw.limit_in_bytes", V1_UNLIMITED, optional=True),
        Write("memory.limit_in_bytes", V1_UNLIMITED if limit is None else str(limit)),
    ]
    if limit is not None and swap is not None:
        out.append(Write("memory.memsw.limit_in_bytes", str(limit + swap)))
    out.append(
        Write(
            "memory.soft_limit_in_bytes",
            V1_UNLIMITED if soft is None else str(soft),
            optional=soft is None,
        )
    )
    return out


@dataclass(frozen=True)
class DiskRule:
    """Throttling of one block device, resolved to its ``major:minor`` on the pnode;
    None = no limit of that kind."""

    dev: str
    read_bps: int | None = None
    write_bps: int | None = None
    read_iops: int | None = None
    write_iops: int | None = None


#: v1 files, each with the DiskRule field it carries; writing ``"<dev> 0"`` drops a rule
V1_DISK_FILES = (
    ("blkio.throttle.read_bps_device", "read_bps"),
    ("blkio.throttle.write_bps_device", "write_bps"),
    ("blkio.throttle.read_iops_device", "read_iops"),
    ("blkio.throttle.write_iops_device", "write_iops"),
)
#: v2 ``io.max`` keys, in the kernel's order
V2_DISK_KEYS = (
    ("rbps", "read_bps"),
    ("wbps", "write_bps"),
    ("riops", "read_iops"),
    ("wiops", "write_iops"),
)


def plan_disk(rules: list[DiskRule], current: list[str], v2: bool) -> list[Write]:
    """Make the vnode's block I/O throttling exactly ``rules``: every device of
    ``current`` (those the cgroup has rules for now) not in ``rules`` is lifted."""
    wanted = {r.dev: r for r in rules}
    stale = [d for d in dict.fromkeys(current) if d not in wanted]
    out: list[Write] = []
    if v2:
        for dev in stale:
            out.append(Write("io.max", f"{dev} " + " ".join(f"{k}=max" for k, _ in V2_DISK_KEYS)))
        for r in rules:
            parts = []
            for key, attr in V2_DISK_KEYS:
                value = getattr(r, attr)
                parts.append(f"{key}={'max' if value is None else value}")
            out.append(Write("io.max", f"{r.dev} " + " ".join(parts)))
        return out
    for file, attr in V1_DISK_FILES:
        for dev in stale:
            out.append(Write(file, f"{dev} 0"))
        for r in rules:
            value = getattr(r, attr)
            out.append(Write(file, f"{r.dev} {0 if value is None else value}"))
    return out


def parse_disk_rules(text: str, v2: bool) -> list[str]:
    """The devices (``major:minor``) a v1 ``blkio.throttle.*_device`` or v2 ``io.max``
    file holds a rule for."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or ":" not in fields[0]:
            continue
        if v2 and all(f.endswith("=max") for f in fields[1:]):
            continue
        out.append(fields[0])
    return out


def plan_limits(
    cpu: CpuLimit | None,
    memory: MemoryLimit | None,
    host: HostCpu,
    pcores: list[int] | None,
    v2: bool,
) -> list[Write]:
    """Every write that makes a vnode's cgroup match ``cpu`` and ``memory`` exactly
    (None = no limit of that kind), whatever was set before."""
    return plan_cpu(cpu, host, pcores, v2) + plan_memory(memory, v2)
