"""``ssh``: machines you already have, reached over SSH, optionally through a gateway.

The machines are listed in the ``testbed:`` section or in a Distem machine file (one
``[user@]host[:port]`` a line). Nothing is reserved: ``reserve`` only turns the list
into machines, ``prepare`` runs the bootstrap over SSH (root, checks, iproute2,
pydistem, ``distemd``) and ``release`` leaves the machines as they are.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from pydistem.adapters.base import (
    Adapter,
    Capabilities,
    OnCreated,
    Options,
    Prepared,
    Reservation,
    ReservationStatus,
)
from pydistem.adapters.prepare import BootstrapSettings, prepare_machines, teardown_machines
from pydistem.errors import ReservationError, ValidationError
from pydistem.model.machines import Machine, parse_machine_lines, read_machine_file


class SshOptions(Options):
    """``machines`` (a list) or ``machinefile`` (a path); ``gateway`` is a jump host."""

    machines: list[str] | None = None
    machinefile: Path | None = None
    gateway: str | None = None
    user: str = "root"
    key: Path | None = None
    bootstrap: BootstrapSettings = Field(default_factory=BootstrapSettings)

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, v: str | None) -> str | None:
        if v is not None:
            Machine.parse(v, "gateway")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> SshOptions:
        if (self.machines is None) == (self.machinefile is None):
            raise ValidationError("machines", "give either `machines` (a list) or `machinefile`")
        if self.machines is not None:
            parse_machine_lines(self.machines, "machines", default_user=self.user)
        if self.key is not None and not self.key.is_file():
            raise ValidationError("key", f"{self.key} is not a readable file")
        return self


class SshAdapter(Adapter):
    name = "ssh"
    summary = "machines you list, reached over SSH (optionally through a gateway)"
    capabilities = Capabilities(bare_metal=True)
    Options = SshOptions
    options: SshOptions

    def machines(self) -> list[Machine]:
        """The listed machines (ValidationError naming the bad line)."""
        o = self.options
        gateway = (
            Machine.parse(o.gateway, "testbed.gateway", default_user=o.user) if o.gateway else None
        )
        if o.machinefile is not None:
            return read_machine_file(o.machinefile, default_user=o.user, gateway=gateway)
        assert o.machines is not None
        return parse_machine_lines(
            o.machines, "testbed.machines", default_user=o.user, gateway=gateway
        )

    def reserve(self, on_created: OnCreated | None = None) -> Reservation:
        """The list as a reservation (id: a hash of the machine ids). Contacts nothing."""
        machines = self.machines()
        digest = hashlib.sha1(" ".join(m.id for m in machines).encode()).hexdigest()[:10]
        res = Reservation(
            testbed=self.name,
            id=digest,
            options=self.options.model_dump(mode="json", exclude_unset=True),
            machines=machines,
        )
        if on_created:
            on_created(res)
        return res

    def status(self, reservation: Reservation) -> ReservationStatus:
        return ReservationStatus("running", f"{len(reservation.machines)} listed machine(s)")

    def prepare(self, reservation: Reservation) -> Prepared:
        """Bootstrap every machine (idempotent); see docs/adapters.md."""
        o = self.options
        prepared = prepare_machines(reservation.machines, o.key, o.bootstrap, self.progress)
        reservation.data["prepared"] = True
        return prepared

    def release(self, reservation: Reservation) -> None:
        """The machines are yours: nothing is given back, but pydistem leaves them as it
        found them (platform quit, ``distemd`` stopped, journals cleaned). Idempotent."""
        if not reservation.data.get("prepared"):
            return
        o = self.options
        bad = teardown_machines(reservation.machines, o.key, o.bootstrap, self.progress)
        if bad:
            raise ReservationError(self.name, f"could not clean {', '.join(bad)}")
        reservation.data["prepared"] = False
