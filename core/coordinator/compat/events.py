"""Distem's event routes (``/events/*``, ``/eventmanager``) on the one event engine.

Each route translates Distem's resource, event type and trace (or generator) through
:mod:`pydistem.events.distem` and schedules them in the coordinator's
:class:`~pydistem.events.engine.EventEngine`, the same as the native API and CLI.
Success answers 200 with an empty body, as Distem does; errors answer Distem's
error convention (Distem itself answered 200 with the message as body: a bug).
"""

from __future__ import annotations

import logging

from pydistem.coordinator.compat.encoding import invalid, json_field
from pydistem.coordinator.compat.router import Form, _route
from pydistem.coordinator.service import Coordinator
from pydistem.events import distem

log = logging.getLogger(__name__)


def _resource(form: Form) -> object:
    resource = json_field(form, "resource")
    if resource is None:
        raise invalid('resource: a JSON object like {"type":"vnode","vnodename":"n1"}')
    return resource


@_route("POST", "/events/trace")
def event_trace_add(c: Coordinator, form: Form) -> str:
    resource = _resource(form)
    trace = json_field(form, "trace")
    if trace is None:
        raise invalid('trace: a JSON object {"<seconds>": value}')
    c.events.add(distem.trace_events(resource, form.get("event_type"), trace), "trace")
    return ""


@_route("POST", "/events/trace_string")
def event_trace_string_add(c: Coordinator, form: Form) -> str:
    text = form.get("trace_string")
    events = distem.trace_string_events(_resource(form), form.get("event_type"), text)
    c.events.add(events, "trace")
    return ""


@_route("POST", "/events/random")
def event_random_add(c: Coordinator, form: Form) -> str:
    generator = json_field(form, "generator")
    seed_text = form.get("seed")  # ours: Distem has no seed
    try:
        seed = int(seed_text) if seed_text is not None else None
    except ValueError:
        raise invalid(f"seed: {seed_text!r} is not an integer") from None
    src = c.events.add_random(
        _resource(form), form.get("event_type"), generator, form.get("first_value"), seed
    )
    log.info("distem-compat: random generator %s has seed %d", src.source, src.seed)
    return ""


@_route("POST", "/eventmanager")
def event_manager_start(c: Coordinator, form: Form) -> str:
    info = c.events.info()
    if not info["events"] and not info["generators"]:
        log.info("distem-compat: event manager started with an empty trace (nothing to play)")
        return ""
    c.events.start()
    return ""


@_route("DELETE", "/eventmanager")
def event_manager_stop(c: Coordinator, form: Form) -> str:
    c.events.clear()  # Distem's stop also clears the trace
    return ""
