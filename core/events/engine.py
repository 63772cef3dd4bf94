"""The coordinator's event engine: the schedule, its validation, its player and its log.

Every source — platform file, native REST, the Ruby-named client calls, the CLI, the
Distem compat routes — ends in :meth:`EventEngine.add`, :meth:`add_random` and the
player controls here. Items are checked against the platform first (vnode and viface
exist, the action is available): one bad item schedules nothing. The schedule is
kept in the coordinator's store, so a restarted coordinator still has it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pydistem.errors import Conflict, NotFound, ValidationError
from pydistem.events import actions
from pydistem.events.churn import churn_events
from pydistem.events.distem import RandomSource
from pydistem.events.model import Churn, Event, parse_items
from pydistem.events.player import LogEntry, Player

if TYPE_CHECKING:
    from pydistem.coordinator.service import Coordinator
    from pydistem.model.specs import VNode

KIND_EVENT = "event"
KIND_RANDOM = "event_random"
#: how many events of an endless random source ``info`` shows
PREVIEW = 20


class EventEngine:
    """Schedule + player of one coordinator. Thread-safe."""

    def __init__(
        self,
        coordinator: Coordinator,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Event, float], bool] | None = None,
    ) -> None:
        self.c = coordinator
        self._lock = threading.RLock()
        self.events: list[Event] = []
        self.randoms: list[RandomSource] = []
        self.player = Player(self._apply, clock=clock, wait=wait)
        store = coordinator.store
        for _, doc in store.all(KIND_EVENT):
            self.events.append(Event.model_validate(doc))
        for _, doc in store.all(KIND_RANDOM):
            self.randoms.append(RandomSource.from_dict(doc))
        self.events.sort(key=lambda e: (e.at, e.id or 0))
        ids = [e.id or 0 for e in self.events] + [
            int(r.source.rsplit(":", 1)[-1]) for r in self.randoms
        ]
        self._ids = itertools.count(max(ids, default=0) + 1)
        tags = [e.source.rsplit("churn:", 1)[-1] for e in self.events if "churn:" in e.source]
        self._sources = itertools.count(max((int(t) for t in tags if t.isdigit()), default=0) + 1)

    # ------------------------------------------------------------------ validation
    def check(
        self, items: Iterable[Event | Churn], field: str = "events", extra: Iterable[VNode] = ()
    ) -> None:
        """Raise for the first item naming an unknown vnode/viface or an unavailable action."""
        vnodes = {**{v.name: v for v in extra}, **dict(self.c.vnodes)}
        for i, item in enumerate(items):
            f = f"{field}[{i}]" if field else ""

            def sub(key: str, f: str = f) -> str:
                return f"{f}.{key}" if f else key

            if isinstance(item, Churn):
                for j, name in enumerate(item.vnodes):
                    if name not in vnodes:
                        raise ValidationError(sub(f"churn.vnodes[{j}]"), f"unknown vnode {name!r}")
                continue
            v = vnodes.get(item.vnode)
            if v is None:
                raise ValidationError(sub("vnode"), f"unknown vnode {item.vnode!r}")
            if item.viface is not None and not any(x.name == item.viface for x in v.vifaces):
                known = ", ".join(x.name for x in v.vifaces) or "none"
                raise ValidationError(
                    sub("viface"), f"vnode {item.vnode} has no viface {item.viface!r} ({known})"
                )
            actions.lookup(item.action).check(self.c, item, f, v)

    # ------------------------------------------------------------------ the schedule
    def parse(self, items: Any, field: str = "events") -> list[Event | Churn]:
        parsed = parse_items(items, field)
        self.check(parsed, field)
        return parsed

    def add(self, items: Any, source: str = "api", field: str = "events") -> list[Event]:
        """Validate then schedule events and churn items (raw documents or parsed).

        All-or-nothing. Returns the scheduled events (churn expanded), with their ids.
        """
        parsed = (
            list(items)
            if isinstance(items, list) and all(isinstance(i, Event | Churn) for i in items)
            else parse_items(items, field)
        )
        self.check(parsed, field)
        out: list[Event] = []
        with self._lock:
            for item in parsed:
                if isinstance(item, Churn):
                    tag = f"churn:{next(self._sources)}"
                    out.extend(churn_events(item, f"{source}/{tag}" if source else tag))
                else:
                    out.append(item.model_copy(update={"source": item.source or source}))
            out = [e.model_copy(update={"id": next(self._ids)}) for e in out]
            with self.c.store.batch():
                for e in out:
                    self.c.store.put(KIND_EVENT, str(e.id), e.model_dump())
            self.events.extend(out)
            self.events.sort(key=lambda e: (e.at, e.id or 0))
        return out

    def add_events(self, events: list[Event]) -> list[Event]:
        """Schedule already-built events (Distem traces), after the same checks."""
        return self.add(list(events))

    def add_random(
        self,
        resource: Any,
        event_type: Any,
        generator: Any,
        first_value: Any = None,
        seed: int | None = None,
    ) -> RandomSource:
        """Schedule a Distem random generator (an endless, seeded stream of events)."""
        with self._lock:
            src = RandomSource.create(
                resource, event_type, generator, first_value, seed, f"random:{next(self._ids)}"
            )
            first = next(iter(src.events()), None)
            if first is not None:
                self.check([first], "")
            self.randoms.append(src)
            self.c.store.put(KIND_RANDOM, src.source, src.to_dict())
            return src

    def clear(self) -> int:
        """Forget every event and generator (stops the player first). Returns how many."""
        self.player.stop()
        with self._lock:
            n = len(self.events) + len(self.randoms)
            with self.c.store.batch():
                for e in self.events:
                    self.c.store.delete(KIND_EVENT, str(e.id))
                for r in self.randoms:
                    self.c.store.delete(KIND_RANDOM, r.source)
            self.events.clear()
            self.randoms.clear()
            return n

    def reset(self) -> None:
        """Forget the schedule and the log (the platform is gone: ``quit``)."""
        self.clear()
        self.player.clear_log()

    def remove(self, event_id: int) -> Event:
        with self._lock:
            for e in self.events:
                if e.id == event_id:
                    self.events.remove(e)
                    self.c.store.delete(KIND_EVENT, str(e.id))
                    return e
        raise NotFound("event", str(event_id))

    def streams(self) -> list[Iterator[Event]]:
        with self._lock:
            return [iter(list(self.events)), *(r.events() for r in self.randoms)]

    # ------------------------------------------------------------------ player
    def start(self) -> int:
        """Play the schedule from time 0 (a new run). Conflict if already running."""
        with self._lock:
            if not self.events and not self.randoms:
                raise Conflict("no event is scheduled: add events first")
            return self.player.start(self.streams())

    def stop(self) -> bool:
        """Stop the run in progress (the schedule stays; start replays it from 0)."""
        return self.player.stop()

    def status(self) -> dict[str, Any]:
        p = self.player
        elapsed = p.elapsed()
        return {
            "running": p.running,
            "run": p.run,
            "elapsed": None if elapsed is None else round(elapsed, 3),
            "dispatched": p.dispatched,
        }

    def info(self) -> dict[str, Any]:
        """The schedule (events by time; generators with their next events) and status."""
        with self._lock:
            events = [e.model_dump() for e in self.events]
            randoms = [
                {
                    **r.to_dict(),
                    "next": [e.model_dump() for e in itertools.islice(r.events(), PREVIEW)],
                }
                for r in self.randoms
            ]
        return {**self.status(), "events": events, "generators": randoms}

    def log(self, run: int | None = None, since: int = 0) -> list[LogEntry]:
        return self.player.log(run, since)

    def close(self) -> None:
        self.player.close()

    # ------------------------------------------------------------------ apply
    def _apply(self, ev: Event) -> str:
        return actions.lookup(ev.action).apply(self.c, ev)
