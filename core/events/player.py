"""The player: replays a schedule against one monotonic clock and logs what it applied.

One player thread walks the events in time order and sleeps until each is due
(``t0 + at`` on the clock). It hands each event to a worker pool through one *lane*
per vnode, so that a slow action on one vnode (starting a container) never delays
the others, while the events of one vnode are applied in order. Every applied event
gets a log entry with its planned and applied time (seconds since start), its
duration and its error. ``stop()`` ends a run; ``start()`` begins a new one at 0.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from pydistem.errors import Conflict, PydistemError
from pydistem.events.model import Event

log = logging.getLogger(__name__)

#: apply(event) -> a detail text for the log; raises PydistemError on failure
Apply = Callable[[Event], str]


@dataclass
class LogEntry:
    """One applied (or failed) event of a run; times in seconds since the run started."""

    run: int
    seq: int
    event: int | None
    planned: float
    applied: float
    delay: float
    duration: float
    action: str
    target: str
    detail: str
    source: str
    ok: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def merge(streams: Iterable[Iterable[Event]]) -> Iterator[Event]:
    """Events of sorted streams, merged in time order (stable: ties keep stream order)."""
    counter = itertools.count()
    iters = [iter(s) for s in streams]
    heap: list[tuple[float, int, int, Event]] = []
    for i, it in enumerate(iters):
        first = next(it, None)
        if first is not None:
            heap.append((first.at, i, next(counter), first))
    heapq.heapify(heap)
    while heap:
        _at, i, _, ev = heapq.heappop(heap)
        yield ev
        nxt = next(iters[i], None)
        if nxt is not None:
            heapq.heappush(heap, (nxt.at, i, next(counter), nxt))


class Player:
    """Plays event streams with ``apply``; thread-safe; restartable.

    ``clock`` is the monotonic clock (seconds) and ``wait(stop, seconds)`` sleeps
    unless ``stop`` is set (returns True when it is): both are injectable so that
    the scheduling logic is unit-tested with a fake clock. ``workers`` bounds how
    many vnodes are acted on at once.
    """

    def __init__(
        self,
        apply: Apply,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Event, float], bool] | None = None,
        workers: int = 8,
        log_limit: int = 100_000,
    ) -> None:
        self._apply = apply
        self._clock = clock
        self._wait = wait or (lambda ev, seconds: ev.wait(seconds))
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="events")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lanes: dict[str, collections.deque[tuple[int, Event]]] = {}
        self._busy: set[str] = set()
        self._idle = threading.Condition(self._lock)
        self._log: collections.deque[LogEntry] = collections.deque(maxlen=log_limit)
        self._seq = itertools.count(1)
        self.run = 0
        self.t0: float | None = None
        self.stopped_at: float | None = None
        self.dispatched = 0

    # ------------------------------------------------------------------ control
    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def start(self, streams: Iterable[Iterable[Event]]) -> int:
        """Begin a new run at time 0 on ``streams`` (each sorted by time).

        Raises Conflict when a run is in progress. Returns the run number.
        """
        with self._lock:
            if self.running:
                raise Conflict(f"the event player is already running (run {self.run})")
            self.run += 1
            self._stop = threading.Event()
            self.t0 = self._clock()
            self.stopped_at = None
            self.dispatched = 0
            events = merge(list(streams))
            run, stop, t0 = self.run, self._stop, self.t0
            self._thread = threading.Thread(
                target=self._play,
                args=(run, events, stop, t0),
                name=f"events-run{run}",
                daemon=True,
            )
            self._thread.start()
            return run

    def stop(self, timeout: float = 30) -> bool:
        """Stop the run (events not yet dispatched are dropped; those being applied
        finish). Idempotent. Returns whether a run was in progress."""
        with self._lock:
            thread, was = self._thread, self.running
            self._stop.set()
            for lane in self._lanes.values():
                lane.clear()
        if thread is not None:
            thread.join(timeout)
        self.wait_idle(timeout)
        if was and self.t0 is not None:
            self.stopped_at = self._clock() - self.t0
        return was

    def wait_idle(self, timeout: float = 30) -> bool:
        """Wait until every dispatched event has been applied."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy, timeout)

    def join(self, timeout: float = 30) -> bool:
        """Wait for the end of the run (every event dispatched and applied)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        return self.wait_idle(timeout)

    def elapsed(self) -> float | None:
        if self.t0 is None:
            return None
        if not self.running and self.stopped_at is not None:
            return self.stopped_at
        return self._clock() - self.t0

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=False)

    # ------------------------------------------------------------------ log
    def log(self, run: int | None = None, since: int = 0) -> list[LogEntry]:
        """Log entries (all runs, or one), with ``seq`` greater than ``since``."""
        with self._lock:
            return [e for e in self._log if (run is None or e.run == run) and e.seq > since]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ------------------------------------------------------------------ the run
    def _play(self, run: int, events: Iterator[Event], stop: threading.Event, t0: float) -> None:
        try:
            for ev in events:
                delay = t0 + ev.at - self._clock()
                if delay > 0 and self._wait(stop, delay):
                    return
                if stop.is_set():
                    return
                self._dispatch(run, ev, stop)
        except Exception:  # a broken stream must not end the daemon silently
            log.exception("event player: run %d ended on an error", run)
        finally:
            if not stop.is_set():
                self.stopped_at = None  # ran to its end; elapsed keeps counting

    def _dispatch(self, run: int, ev: Event, stop: threading.Event) -> None:
        with self._lock:
            self.dispatched += 1
            lane = self._lanes.setdefault(ev.vnode, collections.deque())
            lane.append((run, ev))
            if ev.vnode in self._busy:
                return
            self._busy.add(ev.vnode)
        self._pool.submit(self._drain, ev.vnode, stop)

    def _drain(self, vnode: str, stop: threading.Event) -> None:
        while True:
            with self._lock:
                lane = self._lanes.get(vnode)
                if not lane or stop.is_set():
                    if lane is not None:
                        lane.clear()
                    self._busy.discard(vnode)
                    self._idle.notify_all()
                    return
                run, ev = lane.popleft()
            self._apply_one(run, ev)

    def _apply_one(self, run: int, ev: Event) -> None:
        t0 = self.t0 if self.t0 is not None else self._clock()
        started = self._clock() - t0
        error: str | None = None
        detail = ev.describe()
        try:
            detail = self._apply(ev) or detail
        except PydistemError as exc:
            error = exc.message
        except Exception as exc:  # any failure is the event's logged error
            log.exception("event %s failed", ev.id)
            error = f"{type(exc).__name__}: {exc}"
        ended = self._clock() - t0
        entry = LogEntry(
            run=run,
            seq=next(self._seq),
            event=ev.id,
            planned=ev.at,
            applied=round(started, 6),
            delay=round(started - ev.at, 6),
            duration=round(ended - started, 6),
            action=ev.action,
            target=ev.target(),
            detail=detail,
            source=ev.source,
            ok=error is None,
            error=error,
        )
        if error:
            log.warning(
                "event %s %s %s at %.3fs failed: %s", ev.id, ev.action, ev.target(), started, error
            )
        with self._lock:
            self._log.append(entry)
