"""``/events``: the timed-event schedule, its player and its log (see docs/events.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from pydistem.coordinator.routes import coordinator
from pydistem.coordinator.service import Coordinator
from pydistem.errors import ValidationError
from pydistem.events import distem

router = APIRouter(tags=["events"])
C = Annotated[Coordinator, Depends(coordinator)]
Doc = Annotated[dict[str, Any], Body()]


@router.get("/events")
def events_info(c: C) -> dict[str, Any]:
    return c.events.info()


@router.post("/events")
def events_add(c: C, body: Doc) -> dict[str, Any]:
    added = c.events.add(body.get("events"), source=str(body.get("source") or "api"))
    return {"events": [e.model_dump() for e in added]}


@router.delete("/events")
def events_clear(c: C) -> dict[str, Any]:
    return {"removed": c.events.clear()}


@router.delete("/events/{event_id}")
def event_remove(c: C, event_id: int) -> dict[str, Any]:
    return c.events.remove(event_id).model_dump()


@router.post("/events/trace")
def events_trace(c: C, body: Doc) -> dict[str, Any]:
    """A Distem trace: ``trace`` ({"<seconds>": value}) or ``trace_string`` (lines)."""
    resource, etype = body.get("resource"), body.get("event_type")
    if body.get("trace") is not None:
        events = distem.trace_events(resource, etype, body["trace"])
    elif body.get("trace_string") is not None:
        events = distem.trace_string_events(resource, etype, body["trace_string"])
    else:
        raise ValidationError("trace", "give trace ({seconds: value}) or trace_string (lines)")
    return {"events": [e.model_dump() for e in c.events.add(events, source="trace")]}


@router.post("/events/random")
def events_random(c: C, body: Doc) -> dict[str, Any]:
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValidationError("seed", f"{seed!r} is not an integer")
    src = c.events.add_random(
        body.get("resource"), body.get("event_type"), body.get("generator"),
        body.get("first_value"), seed,
    )  # fmt: skip
    return src.to_dict()


@router.post("/events/start")
def events_start(c: C) -> dict[str, Any]:
    c.events.start()
    return c.events.status()


@router.post("/events/stop")
def events_stop(c: C) -> dict[str, Any]:
    c.events.stop()
    return c.events.status()


@router.get("/events/log")
def events_log(c: C, run: int | None = None, since: int = 0) -> dict[str, Any]:
    entries = [e.to_dict() for e in c.events.log(run, since)]
    return {**c.events.status(), "entries": entries}
