"""Machines: the physical hosts a testbed adapter reserved or a machine file lists.

A machine is reached over SSH as ``user@host:port``, possibly through a jump host
(Grid'5000's access gateway, a CloudLab control node). Its **id** is how pydistem keys
it everywhere (pnodes, journals, summaries): derived from how it is *reached*, never
from what ``hostname`` prints on it — two CloudLab VMs behind one public IP with SSH
ports 25010 and 25011 are two machines, and a machine whose ``hostname`` disagrees
with reverse DNS is still found and cleaned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydistem.errors import ValidationError

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]*$")
_SPEC = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:@\s\[\]]+)(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class Machine:
    """One physical host, as SSH reaches it."""

    host: str
    port: int = 22
    user: str = "root"
    gateway: Machine | None = None
    site: str | None = None
    hardware: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        """Canonical id: lower-case host without a trailing dot, plus ``:port`` when the
        port is not 22."""
        host = self.host.lower().rstrip(".")
        return host if self.port == 22 else f"{host}:{self.port}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == 22 else f":{self.port}"
        via = f" via {self.gateway}" if self.gateway else ""
        return f"{self.user}@{host}{port}{via}"

    @classmethod
    def parse(
        cls,
        spec: str,
        field_name: str = "machine",
        *,
        default_user: str = "root",
        gateway: Machine | None = None,
    ) -> Machine:
        """``[user@]host[:port]`` (IPv6 in brackets) -> Machine, or ValidationError."""
        m = _SPEC.match(spec.strip())
        if not m:
            raise ValidationError(field_name, f"{spec!r} is not [user@]host[:port]")
        host = m["host"].strip("[]")
        if ":" not in host and not _HOST.match(host):
            raise ValidationError(field_name, f"{host!r} is not a host name or address")
        user = m["user"] or default_user
        if not _USER.match(user):
            raise ValidationError(field_name, f"{user!r} is not a user name")
        port = int(m["port"]) if m["port"] else 22
        if not 0 < port < 65536:
            raise ValidationError(field_name, f"port {port} is outside 1-65535")
        return cls(host=host, port=port, user=user, gateway=gateway)


def parse_machine_lines(
    lines: Iterable[str],
    source: str = "machinefile",
    *,
    default_user: str = "root",
    gateway: Machine | None = None,
) -> list[Machine]:
    """One machine per line (``#`` comments and blank lines skipped), as Distem's
    machine files. A machine listed twice (same id) is an error naming both lines."""
    machines: list[Machine] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = Machine.parse(line, f"{source}:{number}", default_user=default_user, gateway=gateway)
        if m.id in seen:
            raise ValidationError(
                f"{source}:{number}", f"{m.id} is already listed on line {seen[m.id]}"
            )
        seen[m.id] = number
        machines.append(m)
    if not machines:
        raise ValidationError(source, "lists no machine")
    return machines


def read_machine_file(
    path: Path, *, default_user: str = "root", gateway: Machine | None = None
) -> list[Machine]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError(str(path), f"cannot read: {exc.strerror}") from None
    return parse_machine_lines(
        text.splitlines(), str(path), default_user=default_user, gateway=gateway
    )
