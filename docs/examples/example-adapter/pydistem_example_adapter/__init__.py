"""``example``: books this machine on a shared booking sheet (a JSON file).

The smallest complete adapter: options validated by a pydantic model (errors name
``testbed.<key>``), a reservation saved through ``on_created`` before any wait, an
idempotent release, and declared capabilities.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import Field

from pydistem.adapters.base import (
    Adapter,
    Capabilities,
    OnCreated,
    Options,
    Prepared,
    Reservation,
    ReservationStatus,
)
from pydistem.errors import ReservationError
from pydistem.model.machines import Machine


class BookingOptions(Options):
    sheet: Path
    holder: str = Field(default_factory=lambda: os.environ.get("USER", "someone"))
    max_bookings: int = Field(1, ge=1)


@contextmanager
def locked(sheet: Path) -> Iterator[dict]:
    """The booking sheet, locked while the block reads and changes it."""
    sheet.parent.mkdir(parents=True, exist_ok=True)
    with sheet.with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = json.loads(sheet.read_text()) if sheet.exists() else {"bookings": {}}
        yield doc
        sheet.write_text(json.dumps(doc, indent=2))


class BookingAdapter(Adapter):
    name = "example"
    summary = "example third-party adapter: books this machine on a shared sheet"
    capabilities = Capabilities(bare_metal=True, layer2=True)
    Options = BookingOptions
    options: BookingOptions

    def reserve(self, on_created: OnCreated | None = None) -> Reservation:
        self.progress.step(f"booking this machine on {self.options.sheet}")
        with locked(self.options.sheet) as doc:
            if len(doc["bookings"]) >= self.options.max_bookings:
                holders = ", ".join(b["holder"] for b in doc["bookings"].values())
                raise ReservationError(self.name, f"this machine is booked by {holders}")
            booking = secrets.token_hex(4)
            doc["bookings"][booking] = {"holder": self.options.holder, "since": time.time()}
        res = Reservation(
            testbed=self.name,
            id=booking,
            options=self.options.model_dump(mode="json", exclude_unset=True),
            machines=[Machine("localhost")],
        )
        if on_created:
            on_created(res)
        return res

    def status(self, reservation: Reservation) -> ReservationStatus:
        with locked(self.options.sheet) as doc:
            held = reservation.id in doc["bookings"]
        return ReservationStatus("running" if held else "ended")

    def prepare(self, reservation: Reservation) -> Prepared:
        # this machine's coordinator (distem deploy starts it) drives it as `localhost`;
        # a remote testbed would call pydistem.adapters.prepare.prepare_machines here
        return Prepared(list(reservation.machines), pnodes=["localhost"])

    def release(self, reservation: Reservation) -> None:
        with locked(self.options.sheet) as doc:
            doc["bookings"].pop(reservation.id, None)
