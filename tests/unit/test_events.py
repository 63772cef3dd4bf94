"""Timed events as logic: the model and its errors, Distem traces and generators, the
churn generator's reproducibility, and the player's scheduling against a fake clock
(plus one run of the player on the real clock)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydistem.errors import Conflict, PydistemError, ValidationError
from pydistem.events import distem
from pydistem.events.churn import churn_events
from pydistem.events.model import Churn, Event, parse_items, parse_time
from pydistem.events.player import Player, merge
from pydistem.model.platform_file import platform_from_dict

# ---------------------------------------------------------------------------- model


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1, 1.0),
        (0, 0.0),
        ("1.5", 1.5),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("2min", 120.0),
        ("1h", 3600.0),
        (" 250 us ", 0.00025),
    ],
)
def test_times_as_users_write_them(value: object, seconds: float) -> None:
    assert parse_time("at", value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-1, "cannot be negative"),
        ("-2s", "cannot be negative"),
        ("3 parsecs", "unknown unit"),
        ("soon", "is not a time"),
        (True, "is not a time"),
        (float("inf"), "finite"),
    ],
)
def test_bad_times_name_the_field(value: object, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as exc:
        parse_time("events[3].at", value)
    assert exc.value.field == "events[3].at"


BAD_EVENTS = [
    ({"at": -1, "action": "stop", "vnode": "n1"}, "events[1].at", "negative"),
    ({"action": "stop", "vnode": "n1"}, "events[1].at", "required"),
    ({"at": 1, "action": "explode", "vnode": "n1"}, "events[1].action", "Input should be"),
    ({"at": 1, "action": "stop", "vnode": "n1", "viface": "if0"}, "events[1].viface", "whole"),
    (
        {"at": 1, "action": "traffic", "vnode": "n1", "bandwidth": "1mbit"},
        "events[1].viface",
        "names a viface",
    ),
    ({"at": 1, "action": "traffic", "vnode": "n1", "viface": "if0"}, "events[1].traffic", "one"),
    (
        {"at": 1, "action": "traffic", "vnode": "n1", "viface": "if0", "bandwidth": "9 parsec"},
        "events[1].traffic.bandwidth",
        "unknown unit",
    ),
    (
        {"at": 1, "action": "traffic", "vnode": "n1", "viface": "if0", "loss": "120%"},
        "events[1].traffic.loss",
        "at most 100",
    ),
    ({"at": 1, "action": "stop", "vnode": "n1", "loss": "1%"}, "events[1].loss", "not a param"),
    (
        {"at": 1, "action": "start", "vnode": "n1", "direction": "input"},
        "events[1].direction",
        "not a parameter",
    ),
    ({"at": 1, "action": "cpu", "vnode": "n1"}, "events[1].cpu", "frequency"),
    ({"at": 1, "action": "memory", "vnode": "n1"}, "events[1].memory", "limit"),
    ({"at": 1, "action": "stop", "vnode": "n1", "memory": "1G"}, "events[1].memory", "not a"),
    (
        {"churn": {"vnodes": ["n1"], "rate": -1, "downtime": 1, "seed": 1, "until": 9}},
        "events[1].churn.rate",
        "> 0",
    ),
    (
        {"churn": {"vnodes": ["n1"], "rate": 1, "downtime": "1 fortnight", "seed": 1, "until": 9}},
        "events[1].churn.downtime",
        "unknown unit",
    ),
    (
        {"churn": {"vnodes": ["n1"], "rate": 1, "downtime": 1, "seed": 1, "until": 0}},
        "events[1].churn.until",
        "after start",
    ),
    (
        {"churn": {"vnodes": ["n1"], "rate": 1, "downtime": 1, "until": 5}},
        "events[1].churn.seed",
        "required",
    ),
]


@pytest.mark.parametrize(("bad", "field", "reason"), BAD_EVENTS)
def test_bad_events_name_the_field(bad: dict, field: str, reason: str) -> None:
    good = {"at": "1s", "action": "stop", "vnode": "n1"}
    with pytest.raises(ValidationError, match=reason) as exc:
        parse_items([good, bad])
    assert exc.value.field == field


def test_traffic_keys_written_flat_and_none_removes_a_limit() -> None:
    (ev,) = parse_items(
        [
            {
                "at": "250ms",
                "action": "traffic",
                "vnode": "n1",
                "viface": "if0",
                "direction": "output",
                "bandwidth": "10mbit",
                "latency": None,
            }
        ]
    )
    assert isinstance(ev, Event)
    assert (ev.at, ev.direction) == (0.25, "output")
    assert ev.traffic == {"bandwidth": "10mbit", "latency": "none"}


def test_platform_file_events_survive_a_dump_and_reload() -> None:
    doc = {
        "vnodes": [{"name": "n-[1-2]", "runtime": "netns"}],
        "events": [
            {"at": 1, "action": "traffic", "vnode": "n-1", "viface": "if0", "loss": "1%"},
            {"at": "2s", "action": "viface_down", "vnode": "n-1", "viface": "if0"},
            {
                "churn": {
                    "vnodes": "n-[1-2]",
                    "rate": "0.5/s",
                    "downtime": "2s",
                    "seed": 7,
                    "until": "30s",
                }
            },
        ],
    }
    p = platform_from_dict(doc)
    churn = p.events[2]
    assert isinstance(churn, Churn) and churn.vnodes == ["n-1", "n-2"] and churn.rate == 0.5
    again = platform_from_dict(p.model_dump(mode="json", exclude_none=True))
    assert again.events == p.events


# ---------------------------------------------------------------------------- churn

CHURN = Churn(vnodes=["a", "b", "c"], rate=0.2, downtime=3, seed=42, until=300)


def _schedule(events: list[Event]) -> list[tuple[float, str, str]]:
    return [(e.at, e.action, e.vnode) for e in events]


def test_churn_same_seed_same_schedule_other_seed_other_schedule() -> None:
    one = _schedule(churn_events(CHURN))
    assert one == _schedule(churn_events(CHURN.model_copy()))
    assert len(one) > 20
    other = _schedule(churn_events(CHURN.model_copy(update={"seed": 43})))
    assert other != one


def test_churn_is_the_same_in_another_process() -> None:
    """No dependence on hash randomisation or process state: a fresh interpreter with
    another PYTHONHASHSEED computes the very same schedule."""
    code = (
        "import json; from pydistem.events.churn import churn_events; "
        "from pydistem.events.model import Churn; "
        f"c = Churn.model_validate({json.dumps(CHURN.model_dump()['churn'])}); "
        "print(json.dumps([[e.at, e.action, e.vnode] for e in churn_events(c)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert [tuple(x) for x in json.loads(out)] == _schedule(churn_events(CHURN))


def test_churn_alternates_fail_recover_within_the_window() -> None:
    events = churn_events(CHURN)
    assert [e.at for e in events] == sorted(e.at for e in events)
    for vnode in CHURN.vnodes:
        mine = [e for e in events if e.vnode == vnode]
        assert [e.action for e in mine] == ["stop", "start"] * (len(mine) // 2)
        assert all(e.at < CHURN.until for e in mine if e.action == "stop")
        assert all(e.at >= 0 for e in mine)


def test_adding_a_vnode_keeps_the_schedule_of_the_others() -> None:
    more = churn_events(CHURN.model_copy(update={"vnodes": ["a", "b", "c", "d"]}))
    assert [x for x in _schedule(more) if x[2] != "d"] == _schedule(churn_events(CHURN))


def test_churn_rate_and_downtime_are_what_was_asked() -> None:
    """Over a long window: failures per up-second ~ rate, mean down time ~ downtime."""
    spec = Churn(vnodes=[f"n{i}" for i in range(20)], rate=0.1, downtime=5, seed=1, until=2000)
    events = churn_events(spec)
    down = up_time = 0.0
    fails = 0
    for vnode in spec.vnodes:
        mine = [e for e in events if e.vnode == vnode]
        t = 0.0
        for fail, recover in zip(mine[::2], mine[1::2], strict=True):
            up_time += fail.at - t
            down += recover.at - fail.at
            t = recover.at
            fails += 1
    assert fails / up_time == pytest.approx(0.1, rel=0.1)
    assert down / fails == pytest.approx(5, rel=0.1)


def test_freeze_mode() -> None:
    events = churn_events(CHURN.model_copy(update={"mode": "freeze"}))
    assert {e.action for e in events} == {"freeze", "unfreeze"}


# ---------------------------------------------------------------------------- Distem traces

VIF = {"type": "viface", "vnodename": "n1", "vifacename": "if0", "viface_direction": "output"}


def test_distem_trace_object_and_units_appended() -> None:
    events = distem.trace_events(VIF, "bandwidth", {"5": "20mbit", "1": 10})
    assert [(e.at, e.traffic, e.direction) for e in events] == [
        (1.0, {"bandwidth": "10mbps"}, "output"),
        (5.0, {"bandwidth": "20mbit"}, "output"),
    ]
    (lat,) = distem.trace_events({**VIF, "viface_direction": None}, "latency", {"0.5": "0.03"})
    assert (lat.traffic, lat.direction) == ({"latency": "0.03ms"}, "both")
    (loss,) = distem.trace_events(VIF, "LOSS", {"2": 5})
    assert loss.traffic == {"loss": "5%"}


def test_distem_trace_string_churn_and_power() -> None:
    text = "# a Distem trace\n1 down\n\n20 up   # back\n30 freeze\n"
    events = distem.trace_string_events({"type": "vnode", "vnodename": "n1"}, "churn", text)
    assert [(e.at, e.action) for e in events] == [(1, "stop"), (20, "start"), (30, "freeze")]
    cpu = distem.trace_string_events({"type": "vcpu", "vnodename": "n1"}, "power", "1 0.5\n2 1200")
    assert [e.cpu for e in cpu] == [{"frequency": 0.5}, {"frequency": "1200MHz"}]


@pytest.mark.parametrize(
    ("resource", "etype", "text", "field"),
    [
        (VIF, "bandwidth", "1 10mbps\n2\n", "trace_string: line 2"),
        (VIF, "bandwidth", "-1 10mbps", "trace_string: line 1"),
        (VIF, "bandwidth", "1 10 parsecs", "trace_string: line 1"),
        (VIF, "bandwidth", "1 10furlong", "trace_string: line 1.traffic.bandwidth"),
        (VIF, "bandwidth", "", "trace_string"),
        (VIF, "warp", "1 2", "event_type"),
        (VIF, "churn", "1 down", "resource.type"),
        ({"type": "vnode", "vnodename": "n1"}, "churn", "1 sideways", "trace_string: line 1"),
        ({"type": "viface", "vnodename": "n1"}, "latency", "1 2", "resource.vifacename"),
        ({"type": "vnode"}, "churn", "1 up", "resource.vnodename"),
        ({**VIF, "viface_direction": "sideways"}, "loss", "1 2", "resource.viface_direction"),
    ],
)
def test_bad_distem_traces_name_the_field(resource, etype, text, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as exc:
        distem.trace_string_events(resource, etype, text)
    assert exc.value.field == field


def test_distem_disk_throttling_applies_to_a_vnode() -> None:
    res, etype = distem.check_resource({"type": "vnode", "vnodename": "n1"}, "disk_throttling")
    assert etype == "disk_throttling" and res["vnodename"] == "n1"
    with pytest.raises(ValidationError, match="applies to a vnode"):
        distem.check_resource(
            {"type": "viface", "vnodename": "n1", "vifacename": "if0"}, "disk_throttling"
        )


def test_distem_memory_limit_is_a_memory_event_in_mib() -> None:
    vnode = {"type": "vnode", "vnodename": "n1"}
    events = distem.trace_events(vnode, "memory_limit", {"1": 512, "2": "1GiB"})
    assert [(e.action, e.memory) for e in events] == [
        ("memory", {"limit": "512MiB"}),
        ("memory", {"limit": "1GiB"}),
    ]


def test_distem_random_churn_is_seeded_and_alternates() -> None:
    gen = {"date": {"distribution": "uniform", "min": 1, "max": 3}}
    src = distem.RandomSource.create({"type": "vnode", "vnodename": "n1"}, "churn", gen, "up", 5)
    first = [(e.at, e.action) for e in _take(src.events(), 50)]
    assert first == [(e.at, e.action) for e in _take(src.events(), 50)]
    assert [a for _, a in first] == ["start", "stop"] * 25
    gaps = [b - a for (a, _), (b, _) in zip([(0.0, ""), *first], first, strict=False)]
    assert all(0.99 <= g <= 3.01 for g in gaps)
    again = distem.RandomSource.from_dict(src.to_dict())
    assert [(e.at, e.action) for e in _take(again.events(), 50)] == first


def test_distem_random_values_and_always() -> None:
    gen = {
        "date": {"distribution": "exponential", "rate": 2},
        "value": {"distribution": "uniform", "min": 1, "max": 100},
    }
    src = distem.RandomSource.create(VIF, "bandwidth", gen, seed=9)
    values = [e.traffic["bandwidth"] for e in _take(src.events(), 20)]  # type: ignore[index]
    assert all(v.endswith("mbps") and 1 <= int(v[:-4]) <= 100 for v in values)
    gen = {
        "availability": {"distribution": "weibull", "scale": 2, "shape": 1.5},
        "unavailability": {"distribution": "always"},
    }
    src = distem.RandomSource.create({"type": "vnode", "vnodename": "n1"}, "churn", gen, seed=1)
    assert [e.action for e in src.events()] == ["stop"]  # down, then down forever


@pytest.mark.parametrize(
    ("gen", "field"),
    [
        ({}, "generator.availability"),
        ({"date": {"distribution": "zipf"}}, "generator.date.distribution"),
        ({"date": {"distribution": "uniform", "min": 1}}, "generator.date.max"),
        ({"date": {"distribution": "uniform", "min": 3, "max": 1}}, "generator.date.max"),
        ({"date": {"distribution": "exponential", "rate": "x"}}, "generator.date.rate"),
        ({"date": {"distribution": "exponential", "rate": -1}}, "generator.date.rate"),
    ],
)
def test_bad_distem_generators_name_the_field(gen: dict, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        distem.RandomSource.create({"type": "vnode", "vnodename": "n1"}, "churn", gen, seed=1)
    assert exc.value.field == field


def _take(it: Iterator[Event], n: int) -> list[Event]:
    return [e for _, e in zip(range(n), it, strict=False)]


# ---------------------------------------------------------------------------- player


def ev(at: float, vnode: str = "n1", action: str = "stop", id: int = 0) -> Event:
    return Event(at=at, action=action, vnode=vnode, id=id)  # type: ignore[arg-type]


def test_merge_keeps_time_order_across_streams() -> None:
    a = [ev(0.5, id=1), ev(2, id=2)]
    b = [ev(0.5, id=3), ev(1, id=4), ev(9, id=5)]
    assert [e.id for e in merge([a, b, []])] == [1, 3, 4, 2, 5]


class FakeClock:
    """Time advances only when the player sleeps, and only once all it dispatched was
    applied: planned and applied times are then exact and the test deterministic."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.player: Player | None = None
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        assert self.player is not None
        target = self.now + seconds
        self.player.wait_idle(10)
        if stop.is_set():
            return True
        self.sleeps.append(round(seconds, 9))
        self.now = max(self.now, target)
        return False


def fake_player(apply) -> tuple[Player, FakeClock]:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    player = Player(apply, clock=clock, wait=clock.wait)
    clock.player = player
    return player, clock


def test_player_applies_in_order_at_the_planned_times_and_logs_errors() -> None:
    applied: list[tuple[float, int | None]] = []
    player: Player | None = None

    def apply(e: Event) -> str:
        assert player is not None and player.t0 is not None
        applied.append((clock.now - player.t0, e.id))
        if e.id == 2:
            raise PydistemError("vnode n2 exploded")
        return f"did {e.id}"

    player, clock = fake_player(apply)
    events = [ev(0, id=1), ev(1.5, "n2", id=2), ev(1.5, id=3), ev(4, "n3", id=4)]
    run = player.start([events])
    assert player.join(10)
    assert run == 1
    assert sorted(applied) == [(0.0, 1), (1.5, 2), (1.5, 3), (4.0, 4)]  # 2, 3: two lanes
    assert clock.sleeps == [1.5, 2.5]
    log = sorted(player.log(), key=lambda e: e.event or 0)
    assert [(e.event, e.planned, e.applied, e.delay, e.ok) for e in log] == [
        (1, 0.0, 0.0, 0.0, True),
        (2, 1.5, 1.5, 0.0, False),
        (3, 1.5, 1.5, 0.0, True),
        (4, 4.0, 4.0, 0.0, True),
    ]
    assert log[1].error == "vnode n2 exploded" and log[0].detail == "did 1"
    assert sorted(e.seq for e in log) == [1, 2, 3, 4]
    assert [e.seq for e in player.log(since=2)] == [3, 4]
    player.close()


def test_player_late_start_reports_the_delay_and_restarts_at_zero() -> None:
    """An apply that takes time delays the next event of the same vnode, not the others;
    the log says by how much. A second start is a new run from time 0."""
    player: Player | None = None

    def apply(e: Event) -> str:
        if e.id == 1:
            clock.now += 2.0  # applying event 1 took 2 s
        return ""

    player, clock = fake_player(apply)
    player.start([[ev(1, "n1", id=1), ev(2, "n1", id=2)]])
    assert player.join(10)
    first = {e.event: e for e in player.log(run=1)}
    assert first[1].duration == 2.0
    assert first[2].delay == pytest.approx(1.0)  # due at 2, applied at 3
    player.start([[ev(0.5, "n1", id=7)]])
    assert player.join(10)
    (second,) = player.log(run=2)
    assert (second.run, second.planned, second.delay) == (2, 0.5, 0.0)
    player.close()


def test_one_vnode_lane_keeps_order_another_vnode_runs_alongside() -> None:
    gate = threading.Event()
    order: list[int | None] = []

    def apply(e: Event) -> str:
        if e.id == 1:
            assert gate.wait(10), "n2's event never ran while n1's was blocked"
        if e.id == 3:
            gate.set()
        order.append(e.id)
        return ""

    player = Player(apply)
    player.start([[ev(0, "n1", id=1), ev(0, "n1", id=2), ev(0, "n2", id=3)]])
    assert player.join(10)
    assert order.index(3) < order.index(1) < order.index(2)
    player.close()


def test_player_on_the_real_clock_stop_and_restart() -> None:
    """The real player thread and monotonic clock: events land at or after their time,
    in order; stop interrupts a long wait at once; start again replays from 0."""
    player = Player(lambda e: "")
    events = [ev(0.1, id=1), ev(0.2, "n2", id=2), ev(0.3, id=3), ev(60, id=4)]
    player.start([events])
    with pytest.raises(Conflict):
        player.start([events])
    deadline = threading.Event()
    for _ in range(100):
        if len(player.log()) == 3:
            break
        deadline.wait(0.05)
    log = player.log()
    assert [e.event for e in log] == [1, 2, 3]
    assert all(e.delay >= 0 for e in log)
    print("player on the real clock, delays (ms):", [round(e.delay * 1000, 2) for e in log])
    assert player.running
    assert player.stop(timeout=5)
    assert not player.running
    assert len(player.log()) == 3  # event 4 (at 60 s) was never applied
    player.start([[ev(0, id=9)]])
    assert player.join(5)
    assert [(e.run, e.event) for e in player.log(run=2)] == [(2, 9)]
    player.close()


def test_docs_page_exists() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    for needle in ("viface_down", "churn", "event_trace_add", "distem events log", "seed"):
        assert needle in text
