"""What a pnode offers to CPU limits: its online cores and their real frequency.

Read from sysfs and /proc (no side effect): ``/sys/devices/system/cpu/online``, the
cpufreq maximum (``cpuinfo_max_freq``) when the kernel has cpufreq, else the ``cpu MHz``
lines of ``/proc/cpuinfo`` (a VM has no cpufreq).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostCpu:
    """The cores limits may use (kernel numbers) and one core's frequency in MHz (0: unknown)."""

    cores: tuple[int, ...]
    mhz: float

    @property
    def count(self) -> int:
        return len(self.cores)


def parse_cpu_list(text: str) -> list[int]:
    """``0-3,6`` -> ``[0, 1, 2, 3, 6]`` (the kernel's cpu list format)."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def format_cpu_list(cores: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5``."""
    out: list[str] = []
    for c in sorted(set(cores)):
        if out and c == int(out[-1].rsplit("-", 1)[-1]) + 1:
            out[-1] = f"{out[-1].split('-')[0]}-{c}"
        else:
            out.append(str(c))
    return ",".join(out)


def read_mhz(
    sys_cpu: Path = Path("/sys/devices/system/cpu"), cpuinfo: str = "/proc/cpuinfo"
) -> float:
    """The highest core frequency in MHz: cpufreq's maximum, else /proc/cpuinfo; 0 if unknown."""
    freqs: list[float] = []
    for f in sys_cpu.glob("cpu[0-9]*/cpufreq/cpuinfo_max_freq"):
        with contextlib.suppress(OSError, ValueError):
            freqs.append(int(f.read_text()) / 1000)  # kHz
    if not freqs:
        with contextlib.suppress(OSError):
            for line in Path(cpuinfo).read_text().splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "cpu MHz":
                    with contextlib.suppress(ValueError):
                        freqs.append(float(value))
    return round(max(freqs), 3) if freqs else 0.0


def host_cpu() -> HostCpu:
    """This pnode's online cores and frequency."""
    try:
        cores = parse_cpu_list(Path("/sys/devices/system/cpu/online").read_text())
    except OSError:
        cores = list(range(os.cpu_count() or 1))
    return HostCpu(tuple(cores), read_mhz())
