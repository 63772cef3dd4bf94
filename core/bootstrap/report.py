"""What bootstrap did to each machine: :class:`MachineReport` and :class:`BootstrapReport`.

A machine moves through :data:`PHASES` in order; the first phase that fails stops it
(``state="failed"``, ``phase`` and ``reason`` say where and why) without stopping the
others. Warnings (a missing optional kernel feature) name their consequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydistem.model.machines import Machine

#: phase name -> what it does (the progress bars and the summary use these)
PHASES: dict[str, str] = {
    "connect": "SSH connection",
    "root": "root access",
    "kernel": "kernel features",
    "iproute2": "iproute2 >= 3.16",
    "lxc": "LXC",
    "pydistem": "pydistem",
    "uplink": "uplink probe",
    "distemd": "distemd",
    "pnode": "pnode init",
}


class StepFailed(Exception):
    """A phase failed on one machine; ``reason`` goes to the summary as it is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class MachineReport:
    machine: Machine
    index: int  # 1-based position in the machine list
    state: str = "pending"  # pending | ready | failed | skipped
    phase: str = "connect"  # the phase reached (the one that failed, when failed)
    reason: str | None = None
    role: str | None = None  # coordinator | agent
    warnings: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # what was changed on the machine
    facts: dict[str, Any] = field(default_factory=dict)  # hostname, address, ip -V, ...

    @property
    def id(self) -> str:
        return self.machine.id

    def fail(self, phase: str, reason: str) -> None:
        self.state, self.phase, self.reason = "failed", phase, reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "machine": str(self.machine),
            "state": self.state,
            "phase": self.phase,
            "reason": self.reason,
            "role": self.role,
            "warnings": self.warnings,
            "actions": self.actions,
            "facts": self.facts,
        }


@dataclass
class BootstrapReport:
    machines: list[MachineReport]
    coordinator: str | None = None  # id of the coordinator machine
    url: str | None = None  # http://address:4567, as the machines reach it
    token: str | None = None
    token_file: str | None = None  # on the coordinator machine
    strict: bool = False

    @property
    def ok(self) -> bool:
        """Every machine is ready (with ``strict``), or at least the coordinator is."""
        if self.strict:
            return all(m.state == "ready" for m in self.machines)
        return self.coordinator is not None and any(m.state == "ready" for m in self.machines)

    @property
    def ready(self) -> list[MachineReport]:
        return [m for m in self.machines if m.state == "ready"]

    @property
    def failed(self) -> list[MachineReport]:
        return [m for m in self.machines if m.state != "ready"]

    def to_dict(self, with_token: bool = False) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "coordinator": self.coordinator,
            "url": self.url,
            "token": self.token if with_token else None,
            "token_file": self.token_file,
            "machines": [m.to_dict() for m in self.machines],
        }
