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
    """The memory limit and the swap allowed on top of it (None: no limit)."""
    limit = memory.limit_bytes() if memory else None
    swap = memory.swap_bytes() if memory else None
    if v2:
        return [
            Write("memory.max", "max" if limit is None else str(limit)),
            Write("memory.swap.max", "max" if swap is None else str(swap), optional=swap is None),
        ]
    # memsw >= limit at every step: lift memsw first, set the limit, then memsw
    out = [
        Write("memory.memsw.limit_in_bytes", V1_UNLIMITED, optional=True),
        Write("memory.limit_in_bytes", V1_UNLIMITED if limit is None else str(limit)),
    ]
    if limit is not None and swap is not None:
        out.append(Write("memory.memsw.limit_in_bytes", str(limit + swap)))
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
