"""One reservation's life: reserve (saved at once), prepare, release (file removed).

:class:`ReservationSession` wraps an adapter and the :class:`ReservationStore` so that a
reservation is on disk from the moment the testbed names it until it is released:
``distem release`` (or one after a crash) always finds what is still held.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydistem.adapters import registry
from pydistem.adapters.base import Adapter, Prepared, Progress, Reservation
from pydistem.adapters.state import ReservationStore
from pydistem.errors import PydistemError, ValidationError


def release_policy(section: Mapping[str, Any] | None) -> bool | None:
    """The ``testbed.release`` key: True, False or None (= release when the platform
    is destroyed by the same command)."""
    value = (section or {}).get("release")
    if value is not None and not isinstance(value, bool):
        raise ValidationError("testbed.release", "must be true or false")
    return value


class ReservationSession:
    """An adapter plus where its reservation is saved."""

    def __init__(self, adapter: Adapter, store: ReservationStore | None = None) -> None:
        self.adapter = adapter
        self.store = store or ReservationStore()
        self.reservation: Reservation | None = None

    @classmethod
    def from_section(
        cls,
        section: Mapping[str, Any] | None,
        progress: Progress | None = None,
        store: ReservationStore | None = None,
    ) -> ReservationSession:
        """Validate a ``testbed:`` section (ValidationError naming ``testbed.<key>``)."""
        release_policy(section)
        return cls(registry.create(section, progress), store)

    def reserve(self) -> Reservation:
        """Reserve; the reservation is saved as soon as the testbed names it and again
        once complete. If the adapter fails and ended its reservation itself, the file
        is removed; otherwise it stays for ``distem release``."""

        def created(res: Reservation) -> None:
            self.reservation = res
            self.store.save(res)

        try:
            res = self.adapter.reserve(created)
        except BaseException:
            held = self.reservation
            if held is not None and held.data.get("deleted"):
                self.store.remove(held)
            raise
        self.reservation = res
        self.store.save(res)
        return res

    def prepare(self) -> Prepared:
        if self.reservation is None:
            raise PydistemError("prepare before reserve")
        try:
            return self.adapter.prepare(self.reservation)
        finally:
            self.store.save(self.reservation)  # how machines are reached, what was prepared

    def release(self) -> None:
        """Release and forget the saved file. Idempotent."""
        if self.reservation is None:
            return
        self.adapter.release(self.reservation)
        self.store.remove(self.reservation)


def release_saved(
    store: ReservationStore, keys: list[str] | None = None, progress: Progress | None = None
) -> list[Reservation]:
    """Release saved reservations (all, or those named by key or id); returns them.

    Each is loaded with the adapter and options it was made with. A failure stops at
    that reservation, whose file stays, and is raised."""
    chosen = [store.get(k) for k in keys] if keys else store.all()
    done = []
    for res in chosen:
        cls = registry.load(res.testbed, f"reservation {res.key}")
        adapter = cls(cls.validate(res.options, f"reservation {res.key}"), progress)
        adapter.release(res)
        store.remove(res)
        done.append(res)
    return done
