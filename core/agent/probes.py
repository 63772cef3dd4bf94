"""The agent's probes: threads that sample this pnode's resources periodically.

``ProbeSet.launch`` replaces the probes (and their data) with new ones and starts them;
``stop`` pauses them (the data stays), ``restart`` resumes them (appending), ``delete``
stops and forgets them. Each sample is ``[time, [values...]]``, ``time`` the seconds
since the epoch on the coordinator's clock (``ref_time`` at launch minus this pnode's
clock then: Distem's drift correction). The readers are pure functions of the
``/proc`` text, unit-tested; the files are read here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydistem.errors import NotFound, ValidationError
from pydistem.model.probes import MAX_SAMPLES, Probe

PROC = Path("/proc")
Counters = tuple[float, ...]


# ---------------------------------------------------------------------------- readers
def net_dev(text: str, iface: str) -> Counters:
    """(rx bytes, tx bytes) of ``iface`` from /proc/net/dev."""
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if sep and name.strip() == iface:
            fields = rest.split()
            return float(fields[0]), float(fields[8])
    raise ValidationError("interface", f"{iface}: no such interface on this pnode")


def loadavg(text: str) -> list[float]:
    return [float(x) for x in text.split()[:3]]


def cpu_times(text: str) -> Counters:
    """(busy, total) jiffies of all CPUs from /proc/stat (idle + iowait are not busy)."""
    fields = [float(x) for x in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    total = sum(fields[:8])  # guest times are already in user/nice
    return total - idle, total


def meminfo(text: str) -> list[float]:
    """[MiB used, MiB available] from /proc/meminfo."""
    kb = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if value.split():
            kb[key] = float(value.split()[0])
    available = kb.get("MemAvailable", kb.get("MemFree", 0.0))
    return [round((kb.get("MemTotal", 0.0) - available) / 1024, 1), round(available / 1024, 1)]


def default_interface(text: str) -> str:
    """The interface of the IPv4 default route, from /proc/net/route."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            return fields[0]
    raise ValidationError("interface", "this pnode has no default route: name the interface")


class _Sampler:
    """Turns one probe's readings into values; rates need the previous reading."""

    def __init__(self, probe: Probe, proc: Path) -> None:
        self.probe = probe
        self.proc = proc
        self.last: tuple[float, Counters] | None = None
        if probe.type == "bw" and probe.interface is None:
            probe.interface = default_interface((proc / "net" / "route").read_text())
        if probe.type == "bw":
            net_dev((proc / "net" / "dev").read_text(), str(probe.interface))  # exists?

    def _rate(self, now: float, counters: Counters) -> Counters | None:
        last, self.last = self.last, (now, counters)
        if last is None or now <= last[0]:
            return None
        return tuple((c - p) / (now - last[0]) for c, p in zip(counters, last[1], strict=True))

    def value(self, now: float) -> list[float] | None:
        kind = self.probe.type
        if kind == "loadavg":
            return loadavg((self.proc / "loadavg").read_text())
        if kind == "memory":
            return meminfo((self.proc / "meminfo").read_text())
        if kind == "bw":
            counters = net_dev((self.proc / "net" / "dev").read_text(), str(self.probe.interface))
            rate = self._rate(now, counters)
            return None if rate is None else [round(r, 1) for r in rate]
        busy, total = cpu_times((self.proc / "stat").read_text())
        last, self.last = self.last, (now, (busy, total))
        if last is None or total <= last[1][1]:
            return None
        return [round(100 * (busy - last[1][0]) / (total - last[1][1]), 1)]


class ProbeSet:
    """The probes of one agent. Thread-safe; every method is idempotent but ``launch``."""

    def __init__(self, proc: Path = PROC, clock: Callable[[], float] = time.time) -> None:
        self._proc = proc
        self._clock = clock
        self._lock = threading.Lock()
        self._probes: list[Probe] = []
        self._data: dict[str, deque[list[Any]]] = {}
        self._drift = 0.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def launch(self, probes: list[Probe], ref_time: float | None = None) -> None:
        """Replace the probes (their data is dropped) and start sampling. Raises
        ValidationError (an unknown interface) before anything changes."""
        samplers = [_Sampler(p.model_copy(), self._proc) for p in probes]
        self.delete()
        with self._lock:
            self._probes = [s.probe for s in samplers]
            self._data = {p.name: deque(maxlen=MAX_SAMPLES) for p in self._probes}
            self._drift = 0.0 if ref_time is None else ref_time - self._clock()
        self._start(samplers)

    def _start(self, samplers: list[_Sampler]) -> None:
        self._stop = threading.Event()
        stop = self._stop
        self._threads = [
            threading.Thread(
                target=self._run, args=(s, stop), daemon=True, name=f"probe-{s.probe.name}"
            )
            for s in samplers
        ]
        for t in self._threads:
            t.start()

    def _run(self, sampler: _Sampler, stop: threading.Event) -> None:
        period = 1.0 / sampler.probe.frequency
        series = self._data[sampler.probe.name]
        next_at = time.monotonic() + period
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += period
            now = self._clock()
            try:
                value = sampler.value(now)
            except (OSError, ValueError, IndexError):
                value = None  # a vanished interface: no sample this period
            if value is not None:
                with self._lock:
                    series.append([round(now + self._drift, 6), value])

    def stop(self) -> None:
        """Pause sampling; the data stays."""
        self._stop.set()
        for t in self._threads:
            t.join()
        self._threads = []

    def restart(self) -> None:
        """Resume the probes (after ``stop``), appending to their data; NotFound when
        there are none."""
        with self._lock:
            probes = list(self._probes)
        if not probes:
            raise NotFound("probes", "(none launched)")
        if self._threads:
            return
        self._start([_Sampler(p, self._proc) for p in probes])

    def delete(self) -> None:
        """Stop the probes and forget them and their data."""
        self.stop()
        with self._lock:
            self._probes, self._data = [], {}

    def data(self) -> dict[str, list[list[Any]]]:
        """``{name: [[time, [values...]], ...]}``."""
        with self._lock:
            return {name: list(series) for name, series in self._data.items()}

    def running(self) -> bool:
        return bool(self._threads)
