"""The event engine behind the native REST routes and Distem's compat routes, in one
process with vnodes that are created but never started (no kernel object is built):
validation at the edge, all-or-nothing, persistence, the player and its log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from pydistem.agent.service import Agent
from pydistem.coordinator.app import create_app
from pydistem.coordinator.compat.encoding import ERROR_HEADER
from pydistem.coordinator.service import Coordinator
from pydistem.state.store import Store
from pydistem.testing import unique_tag

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LOOPBACK = ("127.0.0.1", 50000)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Coordinator, TestClient]]:
    agent = Agent(tmp_path / "agent", tag=unique_tag())
    store = Store(tmp_path / "c.sqlite")
    c = Coordinator(store, connect=None, local_agent=agent)  # type: ignore[arg-type]
    try:
        c.vnetwork_create({"name": "net", "address": "10.144.0.0/24"})
        vif = [{"name": "if0", "vnetwork": "net"}]
        c.vnodes_create([{"name": n, "runtime": "netns", "vifaces": vif} for n in ("n1", "n2")])
        app = create_app(c, None, distem_compat=True)
        with TestClient(app, client=LOOPBACK) as client:
            yield c, client
    finally:
        c.close()
        store.close()
        agent.close()


def err(r):  # type: ignore[no-untyped-def]
    assert r.status_code >= 400, r.text
    return r.json()


def test_bad_items_schedule_nothing_and_name_the_field(stack) -> None:  # type: ignore[no-untyped-def]
    c, api = stack
    good = {"at": "1s", "action": "stop", "vnode": "n1"}
    cases = [
        ({"at": 2, "action": "stop", "vnode": "n9"}, "events[1].vnode", "unknown vnode"),
        (
            {"at": 2, "action": "viface_down", "vnode": "n1", "viface": "if7"},
            "events[1].viface",
            "no viface 'if7'",
        ),
        ({"at": -2, "action": "stop", "vnode": "n1"}, "events[1].at", "negative"),
        (
            {"at": 2, "action": "traffic", "vnode": "n1", "viface": "if0", "bandwidth": "5 mbpx"},
            "events[1].traffic.bandwidth",
            "unknown unit",
        ),
        (
            {"churn": {"vnodes": ["n1", "n5"], "rate": 1, "downtime": 1, "seed": 1, "until": 9}},
            "events[1].churn.vnodes[1]",
            "unknown vnode",
        ),
    ]
    for bad, field, reason in cases:
        body = err(api.post("/api/v1/events", json={"events": [good, bad]}))
        assert body["error"] == "validation" and body["field"] == field, body
        assert reason in body["reason"]
    body = err(
        api.post(
            "/api/v1/events",
            json={"events": [{"at": 1, "action": "cpu", "vnode": "n1", "cpu": {"frequency": 1.5}}]},
        )
    )
    assert body["error"] == "validation" and body["field"] == "events[0].cpu.frequency", body
    mem = {"at": 1, "action": "memory", "vnode": "n1", "memory": "1MiB"}
    body = err(api.post("/api/v1/events", json={"events": [mem]}))
    assert body["field"] == "events[0].memory.limit" and "4MiB" in body["reason"], body
    assert api.get("/api/v1/events").json()["events"] == []
    assert c.store.all("event") == []


def test_schedule_persists_and_a_restarted_coordinator_has_it(stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    c, api = stack
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {"at": "2s", "action": "traffic", "vnode": "n1", "viface": "if0", "latency": "5ms"},
                {"at": "500ms", "action": "stop", "vnode": "n2"},
                {
                    "churn": {
                        "vnodes": ["n1", "n2"],
                        "rate": 0.5,
                        "downtime": 1,
                        "seed": 3,
                        "until": 10,
                    }
                },
            ]
        },
    )
    assert r.status_code == 200, r.text
    added = r.json()["events"]
    assert [e["id"] for e in added] == list(range(1, len(added) + 1))
    assert {e["source"] for e in added} == {"api", "api/churn:1"}
    listed = api.get("/api/v1/events").json()
    assert [e["at"] for e in listed["events"]] == sorted(e["at"] for e in added)
    assert listed["running"] is False
    gone = api.delete("/api/v1/events/2").json()
    assert gone["action"] == "stop"
    assert api.delete("/api/v1/events/2").status_code == 404
    again = Coordinator(c.store, connect=None, local_agent=None)  # type: ignore[arg-type]
    try:
        assert [e.model_dump() for e in again.events.events] == [
            e for e in listed["events"] if e["id"] != 2
        ]
    finally:
        again.close()


def test_play_through_rest_and_read_the_log(stack) -> None:  # type: ignore[no-untyped-def]
    c, api = stack
    assert err(api.post("/api/v1/events/start"))["error"] == "conflict"  # nothing scheduled
    events = [
        {
            "at": 0,
            "action": "traffic",
            "vnode": "n1",
            "viface": "if0",
            "direction": "output",
            "bandwidth": "10mbit",
        },
        {"at": "100ms", "action": "traffic", "vnode": "n1", "viface": "if0", "latency": "5ms"},
        {"at": "200ms", "action": "viface_down", "vnode": "n2", "viface": "if0"},
    ]
    assert api.post("/api/v1/events", json={"events": events}).status_code == 200
    status = api.post("/api/v1/events/start").json()
    assert status["running"] is True and status["run"] == 1
    assert err(api.post("/api/v1/events/start"))["error"] == "conflict"
    entries: list = []
    for _ in range(100):
        entries = api.get("/api/v1/events/log?run=1").json()["entries"]
        if len(entries) == 3:
            break
        time.sleep(0.05)
    assert [(e["event"], e["ok"]) for e in entries] == [(1, True), (2, True), (3, False)]
    assert all(e["applied"] >= e["planned"] for e in entries)
    # the vnode is not running: the link change fails, the log says why
    assert "INIT" in entries[2]["error"]
    # traffic changes merge: the 10mbit output stays, latency added to both directions
    vif = c.vnodes["n1"].vifaces[0]
    assert vif.output is not None and vif.input is not None
    assert (vif.output.bandwidth, vif.output.latency) == ("10mbit", "5ms")
    assert (vif.input.bandwidth, vif.input.latency) == (None, "5ms")
    assert api.get("/api/v1/events/log?since=2").json()["entries"] == entries[2:]
    api.post("/api/v1/events/stop")
    assert api.delete("/api/v1/events").json() == {"removed": 3}


def test_native_distem_trace_and_random(stack) -> None:  # type: ignore[no-untyped-def]
    _c, api = stack
    vif = {"type": "viface", "vnodename": "n1", "vifacename": "if0"}
    body = {"resource": vif, "event_type": "bandwidth", "trace_string": "1 10\n2 5mbit\n3 x y"}
    assert err(api.post("/api/v1/events/trace", json=body))["field"] == "trace_string: line 3"
    body["trace_string"] = "1 10\n2 5mbit\n"
    added = api.post("/api/v1/events/trace", json=body).json()["events"]
    assert [e["traffic"] for e in added] == [{"bandwidth": "10mbps"}, {"bandwidth": "5mbit"}]
    body = {
        "resource": {"type": "vnode", "vnodename": "n3"},
        "event_type": "churn",
        "generator": {"date": {"distribution": "uniform", "min": 1, "max": 2}},
        "seed": 4,
    }
    assert err(api.post("/api/v1/events/random", json=body))["field"] == "vnode"
    body["resource"]["vnodename"] = "n2"
    gen = api.post("/api/v1/events/random", json=body).json()
    assert gen["seed"] == 4
    (listed,) = api.get("/api/v1/events").json()["generators"]
    assert [e["action"] for e in listed["next"][:4]] == ["stop", "start", "stop", "start"]


def form(**fields: object) -> str:
    """A body as Distem's rest-client encodes it: Hash/Array as JSON text, strings as is."""
    parts = []
    for key, value in fields.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={quote(text, safe='')}")
    return "&".join(parts)


def test_distem_event_routes_replayed_from_the_wire_capture(stack) -> None:  # type: ignore[no-untyped-def]
    """WIRE_CAPTURE.md's event requests, byte for byte, through the compat routes."""
    c, api = stack
    # the captures name node1: create it
    c.vnodes_create(
        [{"name": "node1", "runtime": "netns", "vifaces": [{"name": "if0", "vnetwork": "net"}]}]
    )
    vnode = {"vnodename": "node1", "type": "vnode"}
    viface = {
        "vnodename": "node1",
        "type": "viface",
        "vifacename": "if0",
        "viface_direction": "output",
    }
    r = api.post(
        "/events/trace",
        content=form(resource=vnode, event_type="churn", trace={"1": "down", "20": "up"}),
        headers=FORM,
    )
    assert (r.status_code, r.content) == (200, b"")
    r = api.post(
        "/events/trace_string",
        content=form(resource=viface, event_type="bandwidth", trace_string="1 10mbps\n5 20mbps"),
        headers=FORM,
    )
    assert (r.status_code, r.content) == (200, b"")
    gen = {"date": {"distribution": "uniform", "min": 1, "max": 3}}
    r = api.post(
        "/events/random",
        content=form(resource=vnode, event_type="churn", generator=gen, first_value="up"),
        headers=FORM,
    )
    assert (r.status_code, r.content) == (200, b"")
    info = c.events.info()
    assert [(e["at"], e["action"]) for e in info["events"]] == [
        (1.0, "stop"),
        (1.0, "traffic"),
        (5.0, "traffic"),
        (20.0, "start"),
    ]
    assert info["generators"][0]["next"][0]["action"] == "start"  # first_value=up

    # bad input: Distem's error header, nothing scheduled
    r = api.post(
        "/events/trace_string",
        content=form(resource=viface, event_type="bandwidth", trace_string="1 10mbps\n-5 20mbps"),
        headers=FORM,
    )
    assert r.status_code == 400 and r.headers[ERROR_HEADER].startswith("InvalidParameterError")
    r = api.post("/events/trace", content="resource=%7Bbad&event_type=churn", headers=FORM)
    assert r.status_code == 400 and r.headers[ERROR_HEADER].startswith("ParserError")
    assert len(c.events.events) == 4
    r = api.post(
        "/events/trace",
        content=form(resource=vnode, event_type="disk_throttling", trace={"1": "bad"}),
        headers=FORM,
    )
    assert r.status_code == 400 and "trace['1'].disk[0].read" in r.headers[ERROR_HEADER]
    assert len(c.events.events) == 4

    # event_manager_start / _stop (empty bodies, Content-Type still sent)
    r = api.post("/eventmanager", content="", headers=FORM)
    assert (r.status_code, r.content) == (200, b"")
    assert c.events.player.running
    r = api.delete("/eventmanager")
    assert (r.status_code, r.content) == (200, b"")
    assert not c.events.player.running
    assert c.events.info()["events"] == [] and c.events.info()["generators"] == []


def test_a_bad_event_in_a_platform_deploys_nothing(stack) -> None:  # type: ignore[no-untyped-def]
    """Events of a platform are checked against the vnodes it plans, before any is built."""
    c, api = stack
    doc = {
        "vnodes": [{"name": "n5", "runtime": "netns", "vifaces": [{"name": "if0",
                                                                   "vnetwork": "net"}]}],
        "events": [
            {"at": 1, "action": "traffic", "vnode": "n5", "viface": "if0", "loss": "1%"},
            {"at": 2, "action": "cpu", "vnode": "n5", "cpu": {"frequency": 2}},
        ],
    }  # fmt: skip
    body = err(api.post("/api/v1/platform", json=doc))
    assert body["field"] == "events[1].cpu.frequency", body
    doc["events"][1] = {"at": 2, "action": "viface_up", "vnode": "n5", "viface": "if1"}
    assert err(api.post("/api/v1/platform", json=doc))["field"] == "events[1].viface"
    assert "n5" not in c.vnodes and c.events.events == []
