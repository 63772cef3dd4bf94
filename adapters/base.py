"""The testbed adapter contract: reserve machines, prepare them, release them.

An adapter turns a platform file's ``testbed:`` section into pnodes. Every adapter
subclasses :class:`Adapter`, declares its :class:`Capabilities` and an ``Options``
model (its keys of the ``testbed:`` section), and is registered as an entry point of
group ``pydistem.testbeds``. The engine talks to it only through the methods below,
in this order: ``reserve`` -> ``prepare`` -> (experiment) -> ``release``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from pydistem.errors import Unsupported
from pydistem.model.machines import Machine
from pydistem.model.validate import parse


@dataclass(frozen=True)
class Capabilities:
    """What a testbed offers, so the engine can choose (e.g. VXLAN without L2).

    - ``bare_metal``: whole physical machines (root, own kernel).
    - ``vms``: virtual machines.
    - ``vlans``: isolated layer-2 networks between the machines can be reserved.
    - ``snapshots``: a prepared machine can be saved as an image.
    - ``routable_subnets``: address ranges routed to the machines can be reserved, so
      vnode addresses are reachable across the testbed.
    - ``layer2``: the machines share one layer-2 segment by default (bridged vnetworks
      work across pnodes); without it the engine needs VXLAN.
    - ``extend``: a reservation's end can be pushed back.
    """

    bare_metal: bool = False
    vms: bool = False
    vlans: bool = False
    snapshots: bool = False
    routable_subnets: bool = False
    layer2: bool = False
    extend: bool = False

    def names(self) -> list[str]:
        """The names of the capabilities offered, in declaration order."""
        return [k for k, v in asdict(self).items() if v]


@dataclass
class Reservation:
    """What a testbed granted: machines plus what ``release`` needs to end it.

    ``id`` is the testbed's own id (OAR job, lease, slice); ``data`` is the adapter's
    JSON-able bookkeeping (site, subnets, vlan...). Never holds a credential: it is
    saved to disk so that a later ``distem release`` (or one after a crash) finds it.
    """

    testbed: str
    id: str
    options: dict[str, Any] = field(default_factory=dict)
    machines: list[Machine] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    expires_at: float | None = None

    @property
    def key(self) -> str:
        """``g5k-1894417``: unique among saved reservations."""
        return f"{self.testbed}-{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "testbed": self.testbed,
            "id": self.id,
            "options": self.options,
            "machines": [machine_to_dict(m) for m in self.machines],
            "data": self.data,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Reservation:
        return cls(
            testbed=str(doc["testbed"]),
            id=str(doc["id"]),
            options=dict(doc.get("options") or {}),
            machines=[machine_from_dict(m) for m in doc.get("machines") or []],
            data=dict(doc.get("data") or {}),
            created_at=float(doc.get("created_at") or time.time()),
            expires_at=doc.get("expires_at"),
        )


def machine_to_dict(m: Machine) -> dict[str, Any]:
    return {
        "host": m.host,
        "port": m.port,
        "user": m.user,
        "gateway": machine_to_dict(m.gateway) if m.gateway else None,
        "site": m.site,
        "hardware": dict(m.hardware),
    }


def machine_from_dict(doc: Mapping[str, Any]) -> Machine:
    gw = doc.get("gateway")
    return Machine(
        host=str(doc["host"]),
        port=int(doc.get("port") or 22),
        user=str(doc.get("user") or "root"),
        gateway=machine_from_dict(gw) if gw else None,
        site=doc.get("site"),
        hardware=dict(doc.get("hardware") or {}),
    )


@dataclass
class Prepared:
    """Machines ready as pnodes, and the coordinator that drives them.

    ``coordinator`` is the URL of the coordinator the preparation started (on the first
    machine), with its bearer ``token`` (a :class:`~pydistem.adapters.credentials.Secret`);
    None means this machine's own coordinator, to which ``pnodes`` (targets for
    ``pnode_init``) are added."""

    machines: list[Machine]
    coordinator: str | None = None
    token: Any = None
    pnodes: list[Any] = field(default_factory=list)
    key: Path | None = None  # the SSH key that reached the machines (for a tunnel)


@dataclass(frozen=True)
class ReservationStatus:
    """``state`` is one of ``pending``, ``running``, ``ended``, ``error``."""

    state: str
    message: str = ""
    expires_at: float | None = None


class Progress(Protocol):
    """Where an adapter reports long work; the CLI shows it, a library caller may log it.

    ``step`` starts a new phase ("submitting OAR job"); ``update`` refines the current
    one ("waiting, scheduled at 11:00"). Neither may receive a credential.
    """

    def step(self, message: str) -> None: ...

    def update(self, message: str) -> None: ...


class SilentProgress:
    """A Progress that shows nothing (the default for library callers)."""

    def step(self, message: str) -> None:
        pass

    def update(self, message: str) -> None:
        pass


class Options(BaseModel):
    """Base of every adapter's options model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


#: ``on_created(reservation)``: called by ``reserve`` as soon as the testbed knows the
#: reservation (before waiting for it), so the caller can save it for a later release.
OnCreated = Callable[[Reservation], None]


class Adapter(ABC):
    """One testbed. Subclasses set ``name``, ``capabilities``, ``Options`` and ``summary``.

    The constructor takes validated options (see :meth:`validate`) and a Progress; it
    must not contact the testbed. Errors are :class:`pydistem.errors.PydistemError`
    leaves: ``ValidationError`` for bad options, ``ReservationError`` for what the
    testbed refused or failed, ``Unsupported`` for what it cannot do.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    Options: ClassVar[type[Options]] = Options

    def __init__(self, options: Options, progress: Progress | None = None) -> None:
        self.options = options
        self.progress: Progress = progress or SilentProgress()

    @classmethod
    def validate(cls, doc: Mapping[str, Any], prefix: str = "testbed") -> Options:
        """The ``testbed:`` section (without ``adapter``) -> this adapter's Options.

        Raises ValidationError naming ``testbed.<key>``. Pure: contacts nothing."""
        return parse(cls.Options, dict(doc), prefix)

    @abstractmethod
    def reserve(self, on_created: OnCreated | None = None) -> Reservation:
        """Obtain machines and wait until they are usable; return the reservation.

        Calls ``on_created`` once the testbed has an id, before any long wait. On any
        failure after that, the adapter ends what it obtained itself (job deleted) and
        raises ReservationError: nothing stays reserved. Not idempotent (each call
        reserves anew)."""

    @abstractmethod
    def status(self, reservation: Reservation) -> ReservationStatus:
        """The testbed's view of the reservation now. Read-only, idempotent."""

    def extend(self, reservation: Reservation, seconds: int) -> Reservation:
        """Push the end of the reservation back by ``seconds``. Raises Unsupported when
        the testbed cannot (``capabilities.extend`` is False), ReservationError when it
        refuses."""
        raise Unsupported(f"testbed {self.name!r} cannot extend a reservation")

    @abstractmethod
    def prepare(self, reservation: Reservation) -> Prepared:
        """Make the machines pnodes: reach them (gateway), root access, hostnames,
        iproute2 >= 3.16, kernel features, pydistem installed and ``distemd`` running
        (usually through :func:`pydistem.adapters.prepare.prepare_machines`). Returns
        the machines ready and the coordinator that drives them. Idempotent: a second
        call checks and changes nothing."""

    @abstractmethod
    def release(self, reservation: Reservation) -> None:
        """End the reservation (delete the job, the lease...). Idempotent: releasing an
        already ended reservation is not an error. Raises ReservationError only when the
        testbed still holds it and refused to let go."""

    def planned_subnets(self) -> list[int]:
        """Prefix lengths of the routable subnets ``reserve`` will obtain with these
        options, in order (``[]``: none). Lets ``distem deploy`` check a file's
        ``address: testbed`` vnetworks before reserving. Pure."""
        return []

    def reserved_subnets(self, reservation: Reservation) -> list[IPv4Network]:
        """The routable subnets ``reservation`` holds, in the testbed's order: what the
        vnetworks with ``address: testbed`` get. Read from the reservation's data only
        (no call to the testbed). Default: none."""
        return []

    def subnets_gateway(self, reservation: Reservation) -> str | None:
        """The router of the subnets ``reservation`` holds, if the testbed routes them
        through one: the ``gateway`` (default route of the vnodes) of the vnetworks
        filled from them that set none. From the reservation's data only. Default: None."""
        return None

    def describe(self) -> dict[str, Any]:
        return describe(type(self))


def describe(cls: type[Adapter]) -> dict[str, Any]:
    """Name, summary, capabilities and option keys of an adapter class (for listings)."""
    return {
        "name": cls.name,
        "summary": cls.summary,
        "capabilities": cls.capabilities.names(),
        "options": sorted(cls.Options.model_fields),
    }
