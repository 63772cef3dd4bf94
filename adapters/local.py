"""``local``: this machine alone, as the quick start uses it.

Nothing to reserve or release; ``prepare`` checks what the pnode agent needs here
(root, iproute2 with VXLAN support) and returns the machine ``localhost``, which the
coordinator started by ``distem deploy`` drives in-process.
"""

from __future__ import annotations

import os
import shutil
import socket

from pydistem.adapters.base import (
    Adapter,
    Capabilities,
    OnCreated,
    Options,
    Prepared,
    Reservation,
    ReservationStatus,
)
from pydistem.errors import Unsupported
from pydistem.model.machines import Machine


class LocalOptions(Options):
    """``local`` takes no option."""


class LocalAdapter(Adapter):
    name = "local"
    summary = "this machine alone (root, LXC, iproute2)"
    capabilities = Capabilities(bare_metal=True, layer2=True)
    Options = LocalOptions

    def reserve(self, on_created: OnCreated | None = None) -> Reservation:
        """Always succeeds at once: the reservation ``local-localhost``."""
        res = Reservation(
            testbed=self.name,
            id="localhost",
            machines=[Machine("localhost", site=socket.gethostname())],
        )
        if on_created:
            on_created(res)
        return res

    def status(self, reservation: Reservation) -> ReservationStatus:
        return ReservationStatus("running", "this machine")

    def prepare(self, reservation: Reservation) -> Prepared:
        """Checks root and ``ip``; raises Unsupported naming what is missing. The pnode
        is ``localhost`` on the local coordinator (``distem deploy`` starts it)."""
        self.progress.step("checking this machine")
        if os.geteuid() != 0:
            raise Unsupported("the local pnode needs root (netlink, LXC, cgroups): run as root")
        if shutil.which("ip") is None:
            raise Unsupported("the local pnode needs iproute2 (`ip`): apt-get install iproute2")
        return Prepared(list(reservation.machines), pnodes=["localhost"])

    def release(self, reservation: Reservation) -> None:
        """Nothing is held."""
