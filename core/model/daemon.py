"""The ``daemon:`` section of a platform file: options of the coordinator it needs.

``distem deploy FILE`` applies them where it starts the coordinator: to the local
``distemd -d`` it starts (the ``local`` testbed, or no ``testbed:`` section), or to the
``distemd`` a testbed's bootstrap starts on the first machine. A coordinator already
running without them is an error before anything is built: its options cannot change
while it runs.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

#: distemd's default --distem-compat-allow: loopback only
LOOPBACK = ("127.0.0.0/8", "::1/128")


class DaemonSettings(BaseModel):
    """``distem_compat``: serve Distem 1.x's REST routes next to the native API
    (``distemd --distem-compat``, see docs/coming-from-distem.md).
    ``distem_compat_allow``: the client networks allowed on them (CIDRs, a list or a
    comma-separated string; default loopback only)."""

    model_config = ConfigDict(extra="forbid")

    distem_compat: bool = False
    distem_compat_allow: list[str] | None = None

    @field_validator("distem_compat_allow", mode="before")
    @classmethod
    def _cidrs(cls, value: Any) -> Any:
        if value is None:
            return None
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise ValueError("must be a CIDR, a comma-separated string or a list of CIDRs")
        out = []
        for item in items:
            try:
                out.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not a network (e.g. 10.0.0.0/8)") from None
        return out

    def distemd_args(self) -> list[str]:
        """The ``distemd -d`` options these settings ask for."""
        if not self.distem_compat:
            return []
        return ["--distem-compat", "--distem-compat-allow", self.allow_string()]

    def allow_string(self) -> str:
        return ",".join(self.distem_compat_allow or LOOPBACK)
