"""The contract of a CPU/memory limit plugin (stevedore group ``pydistem.limits``).

A limiter confines one vnode's processes to some cores at some speed and to some memory.
It works on the vnode's control groups, which the runtime names (``Runtime.cgroup_dirs``:
``pd<tag>-<vnode>`` for ``netns``, LXC's ``lxc.payload.<container>`` for ``lxc``); the agent
picks the cores (``pcores``) and calls :meth:`Limiter.apply` after every start and on
every live change.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import ClassVar

from pydistem.errors import Unsupported
from pydistem.model.limits import CpuLimit, MemoryLimit
from pydistem.plugins.limits.host import HostCpu
from pydistem.plugins.limits.plan import DiskRule


class Limiter(abc.ABC):
    """One way of limiting vnodes. Made once per agent; stateless between calls."""

    name: ClassVar[str]

    @abc.abstractmethod
    def host(self) -> HostCpu:
        """This pnode's online cores and core frequency (MHz, 0 when unknown)."""

    @abc.abstractmethod
    def validate(self, cpu: CpuLimit | None, memory: MemoryLimit | None) -> None:
        """Raise ValidationError(field, reason) for limits this pnode cannot give
        (``cpu.cores`` above its core count, ``cpu.frequency`` above its MHz, ``cpu.pcores``
        not online), Unsupported when the kernel lacks a knob the limits need (swap
        accounting...). Touches nothing."""

    @abc.abstractmethod
    def apply(
        self,
        dirs: list[Path],
        cpu: CpuLimit | None,
        memory: MemoryLimit | None,
        pcores: list[int] | None,
    ) -> None:
        """Make the cgroups ``dirs`` of one vnode match ``cpu`` (pinned to ``pcores``,
        None = every core) and ``memory`` exactly; None = no limit of that kind.
        Idempotent, live (running processes are re-limited at once). Raises
        Unsupported when a needed cgroup file is missing, KernelError when the kernel
        refuses a value (e.g. a memory limit below what the vnode uses and cannot free)."""

    def check_disk(self) -> None:
        """Raise Unsupported when this limiter or kernel cannot throttle block I/O."""
        raise Unsupported(f"the {self.name} limiter has no disk throttling")

    def apply_disk(self, dirs: list[Path], rules: list[DiskRule]) -> None:
        """Make the block I/O throttling of one vnode's cgroups ``dirs`` exactly ``rules``
        (devices already resolved; ``[]`` lifts every rule). Idempotent, live. Raises
        Unsupported or KernelError as :meth:`apply`."""
        raise Unsupported(f"the {self.name} limiter has no disk throttling")

    @abc.abstractmethod
    def usage(self, dirs: list[Path]) -> dict[str, int]:
        """What the vnode consumed so far: ``cpu_ns`` (CPU time), ``memory_bytes`` (now),
        ``oom_kills`` (processes the OOM killer killed in it), ``throttled`` (CFS periods
        in which it was throttled), ``disk_read_bytes``/``disk_write_bytes`` (block I/O
        that reached a disk). A counter the kernel does not offer is left out."""
