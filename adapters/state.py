"""Saved reservations: one JSON file per reservation under the state directory.

``distem deploy`` saves a reservation as soon as the testbed names it and removes the
file once it is released, so a later ``distem release`` — or one after a crash — finds
what is still held. Files are written atomically (temp file + rename) and hold no
credential. Directory: ``$PYDISTEM_STATE_DIR/reservations`` (default
``/var/lib/pydistem/reservations``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydistem.adapters.base import Reservation
from pydistem.errors import NotFound, PydistemError


def default_dir() -> Path:
    return Path(os.environ.get("PYDISTEM_STATE_DIR", "/var/lib/pydistem")) / "reservations"


class ReservationStore:
    """The saved reservations of this machine. Every method is idempotent."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_dir()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def save(self, reservation: Reservation) -> Path:
        """Write (or overwrite) the reservation's file atomically."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(reservation.key)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(reservation.to_dict(), indent=2) + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        return path

    def remove(self, reservation: Reservation) -> None:
        self._path(reservation.key).unlink(missing_ok=True)

    def all(self) -> list[Reservation]:
        """Every saved reservation, oldest first. A corrupt file is an error naming it."""
        if not self.directory.is_dir():
            return []
        out = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                out.append(Reservation.from_dict(json.loads(path.read_text())))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise PydistemError(f"cannot read saved reservation {path}: {exc}") from None
        return sorted(out, key=lambda r: r.created_at)

    def get(self, key: str) -> Reservation:
        """By key (``g5k-1894417``) or by bare id (``1894417``) when unambiguous."""
        found = [r for r in self.all() if key in (r.key, r.id)]
        if len(found) != 1:
            raise NotFound("reservation", key)
        return found[0]
