"""Distem's event vocabulary translated to pydistem events.

Distem names a target with a *resource* (``{"type": "vnode", "vnodename": "n1"}``,
``{"type": "viface", "vnodename": "n1", "vifacename": "if0", "viface_direction":
"output"}``, ``{"type": "vcpu", ...}``) and a change with an *event type* (``churn``,
``bandwidth``, ``latency``, ...). Its traces are ``{"<seconds>": value}`` objects or
text lines ``<seconds> <value>``; its random generators draw dates (and values)
from ``uniform``, ``exponential`` or ``weibull`` distributions. Used by the Ruby-named
client methods and by the compat routes, so both reach the same engine.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydistem.errors import ValidationError
from pydistem.events.model import Event, parse_time
from pydistem.model.validate import parse

#: Distem event types on a viface -> the Traffic key they change, and the unit Distem
#: appends to a bare number
TRAFFIC_TYPES = {
    "bandwidth": ("bandwidth", "mbps"),
    "latency": ("latency", "ms"),
    "jitter": ("jitter", "ms"),
    "loss": ("loss", "%"),
    "corruption": ("corruption", "%"),
    "duplication": ("duplication", "%"),
    "reordering": ("reordering", "%"),
}
CHURN_VALUES = {"up": "start", "down": "stop", "freeze": "freeze", "unfreeze": "unfreeze"}
EVENT_TYPES = ("churn", *TRAFFIC_TYPES, "power", "memory_limit", "disk_throttling")
DISTRIBUTIONS = {
    "uniform": ("min", "max"),
    "exponential": ("rate",),
    "weibull": ("scale", "shape"),
    "always": (),
}


def check_resource(resource: Any, event_type: Any) -> tuple[dict[str, Any], str]:
    """Validate a Distem resource description and event type (keys in any case)."""
    if not isinstance(resource, dict):
        raise ValidationError("resource", "a JSON object like {type: vnode, vnodename: n1}")
    res = {str(k).lower(): v for k, v in resource.items()}
    kind = str(res.get("type") or "").lower()
    if kind not in ("vnode", "viface", "vcpu"):
        raise ValidationError("resource.type", f"{res.get('type')!r} is not vnode, viface or vcpu")
    if not isinstance(res.get("vnodename"), str) or not res["vnodename"]:
        raise ValidationError("resource.vnodename", "the vnode name is required")
    if kind == "viface" and (not isinstance(res.get("vifacename"), str) or not res["vifacename"]):
        raise ValidationError("resource.vifacename", "a viface resource names its viface")
    direction = res.get("viface_direction")
    if direction not in (None, "", "input", "output"):
        raise ValidationError("resource.viface_direction", f"{direction!r} is not input or output")
    etype = str(event_type or "").lower()
    if etype not in EVENT_TYPES:
        raise ValidationError(
            "event_type", f"{event_type!r} is not one of {', '.join(EVENT_TYPES)}"
        )
    wanted = {
        "churn": "vnode",
        "power": "vcpu",
        "memory_limit": "vnode",
        "disk_throttling": "vnode",
    }.get(etype, "viface")
    if kind != wanted:
        raise ValidationError(
            "resource.type", f"a {etype} event applies to a {wanted}, not a {kind}"
        )
    res["type"] = kind
    return res, etype


def _with_unit(value: Any, unit: str) -> str:
    """Distem's rule: a bare number gets the type's unit (``10`` -> ``10mbps``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:g}{unit}"
    text = str(value).strip()
    try:
        float(text)
    except ValueError:
        return text
    return text + unit


def to_event(
    res: dict[str, Any], etype: str, at: float, value: Any, source: str, field: str
) -> Event:
    """One pydistem event from a checked resource, type, date and value."""
    doc: dict[str, Any] = {"at": at, "vnode": res["vnodename"], "source": source}
    if etype == "churn":
        action = CHURN_VALUES.get(str(value).lower())
        if action is None:
            raise ValidationError(
                field, f"{value!r}: a churn value is up, down, freeze or unfreeze"
            )
        doc["action"] = action
    elif etype == "power":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(field, f"{value!r} is not a CPU frequency") from None
        doc["action"] = "cpu"
        doc["cpu"] = {"frequency": number if number <= 1 else f"{number:g}MHz"}
    elif etype == "memory_limit":
        doc["action"] = "memory"
        doc["memory"] = {"limit": _with_unit(value, "MiB")}  # Distem's vmem is in MB
    elif etype == "disk_throttling":
        doc["action"] = "disk"
        doc["disk"] = disk_value(value, field)
    else:
        key, unit = TRAFFIC_TYPES[etype]
        doc.update(
            action="traffic", viface=res["vifacename"], traffic={key: _with_unit(value, unit)}
        )
        if res.get("viface_direction"):
            doc["direction"] = res["viface_direction"]
    return parse(Event, doc, field)


def disk_value(value: Any, field: str) -> list[dict[str, Any]]:
    """A disk_throttling event's value: a disk_throttling object (as in a vfilesystem:
    replaces the vnode's throttles; empty lifts them), or bytes per second for both read
    and write on the disk of the vnode's rootfs."""
    from pydistem.coordinator.compat.vresources import disk_from_desc

    if isinstance(value, dict):
        return disk_from_desc({str(k).lower(): v for k, v in value.items()}, field) or []
    if value in (None, "") or isinstance(value, bool):
        raise ValidationError(field, f"{value!r}: a disk rate in bytes per second")
    if str(value).strip().lower() in ("none", "unlimited", "0"):
        return []
    return [{"read": str(value), "write": str(value)}]


def trace_events(resource: Any, event_type: Any, trace: Any, source: str = "trace") -> list[Event]:
    """Events from a Distem trace: a ``{"<seconds>": value}`` object (``event_trace_add``)."""
    res, etype = check_resource(resource, event_type)
    if not isinstance(trace, dict):
        raise ValidationError("trace", 'a JSON object {"<seconds>": value, ...}')
    out = []
    for date, value in trace.items():
        at = parse_time(f"trace[{date!r}]", date)
        out.append(to_event(res, etype, at, value, source, f"trace[{date!r}]"))
    return sorted(out, key=lambda e: e.at)


def parse_trace_string(text: Any) -> list[tuple[float, str]]:
    """``<seconds> <value>`` lines (Distem's trace files); blank and ``#`` lines skipped."""
    if not isinstance(text, str):
        raise ValidationError("trace_string", "lines of '<seconds> <value>'")
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValidationError(
                f"trace_string: line {n}", f"{raw.strip()!r} is not '<seconds> <value>'"
            )
        out.append((parse_time(f"trace_string: line {n}", parts[0]), parts[1]))
    if not out:
        raise ValidationError("trace_string", "no '<seconds> <value>' line")
    return out


def trace_string_events(
    resource: Any, event_type: Any, text: Any, source: str = "trace"
) -> list[Event]:
    """Events from Distem's text trace (``event_trace_string_add``, trace files)."""
    res, etype = check_resource(resource, event_type)
    lines = parse_trace_string(text)
    return sorted(
        (
            to_event(res, etype, at, v, source, f"trace_string: line {i + 1}")
            for i, (at, v) in enumerate(lines)
        ),
        key=lambda e: e.at,
    )


# ---------------------------------------------------------------------------- random


def _check_distribution(desc: Any, field: str) -> dict[str, Any]:
    if not isinstance(desc, dict):
        raise ValidationError(field, "a JSON object like {distribution: uniform, min: 1, max: 3}")
    d = {str(k).lower(): v for k, v in desc.items()}
    kind = str(d.get("distribution") or "").lower()
    if kind not in DISTRIBUTIONS:
        raise ValidationError(
            f"{field}.distribution",
            f"{d.get('distribution')!r} is not one of {', '.join(DISTRIBUTIONS)}",
        )
    out: dict[str, Any] = {"distribution": kind}
    for key in DISTRIBUTIONS[kind]:
        try:
            number = float(d[key])
        except KeyError:
            raise ValidationError(
                f"{field}.{key}", f"is required for a {kind} distribution"
            ) from None
        except (TypeError, ValueError):
            raise ValidationError(f"{field}.{key}", f"{d[key]!r} is not a number") from None
        if not math.isfinite(number) or number < 0 or (key != "min" and number == 0):
            raise ValidationError(f"{field}.{key}", f"{d[key]!r} must be a positive number")
        out[key] = number
    if kind == "uniform" and out["max"] < out["min"]:
        raise ValidationError(f"{field}.max", "must be at least min")
    return out


def _draw(dist: dict[str, Any], rng: random.Random) -> float | None:
    kind = dist["distribution"]
    if kind == "uniform":
        return float(dist["min"] + (dist["max"] - dist["min"]) * rng.random())
    if kind == "exponential":
        return rng.expovariate(dist["rate"])
    if kind == "weibull":
        return rng.weibullvariate(dist["scale"], dist["shape"])
    return None  # always: no further event


@dataclass
class RandomSource:
    """Distem's random event generator (``event_random_add``) as an endless stream.

    Churn alternates values from ``first_value`` (default ``down``): the time to a
    ``down`` is drawn from ``availability``, to an ``up`` from ``unavailability``
    (``date`` sets both). Other types draw each date gap from ``date`` and each value
    from ``value`` (rounded, at least 1; ``power`` keeps fractions up to 1). Each
    draw sequence has its own stream seeded by ``seed``: the same seed replays the
    same events.
    """

    resource: dict[str, Any]
    event_type: str
    generator: dict[str, Any]
    first_value: str | None
    seed: int
    source: str = "random"

    @classmethod
    def create(
        cls,
        resource: Any,
        event_type: Any,
        generator: Any,
        first_value: Any = None,
        seed: int | None = None,
        source: str = "random",
    ) -> RandomSource:
        """Validate everything now (a bad generator schedules nothing)."""
        res, etype = check_resource(resource, event_type)
        if not isinstance(generator, dict):
            raise ValidationError("generator", "a JSON object with date (and value) distributions")
        gen = {str(k).lower(): v for k, v in generator.items()}
        checked: dict[str, Any] = {}
        if etype == "churn":
            if gen.get("date") is not None:
                if gen.get("availability") or gen.get("unavailability"):
                    raise ValidationError(
                        "generator.date", "give date, or availability and unavailability"
                    )
                checked["availability"] = checked["unavailability"] = _check_distribution(
                    gen["date"], "generator.date"
                )
            else:
                for key in ("availability", "unavailability"):
                    if gen.get(key) is None:
                        raise ValidationError(f"generator.{key}", "is required (or give date)")
                    checked[key] = _check_distribution(gen[key], f"generator.{key}")
            first = str(first_value or "down").lower()
            if first not in ("up", "down"):
                raise ValidationError("first_value", f"{first_value!r}: a churn starts up or down")
        else:
            for key in ("date", "value"):
                if gen.get(key) is None:
                    raise ValidationError(f"generator.{key}", "is required")
                checked[key] = _check_distribution(gen[key], f"generator.{key}")
            first = None
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        return cls(res, etype, checked, first, int(seed), source)

    def events(self) -> Iterator[Event]:
        """The events in time order; endless unless a distribution is ``always``."""
        streams = {k: random.Random(f"pydistem-random:{self.seed}:{k}") for k in self.generator}
        t = 0.0
        value: Any = self.first_value
        n = 0
        while True:
            if self.event_type == "churn":
                gap = _draw(
                    self.generator["availability" if value == "down" else "unavailability"],
                    streams["availability" if value == "down" else "unavailability"],
                )
            else:
                gap = _draw(self.generator["date"], streams["date"])
                drawn = _draw(self.generator["value"], streams["value"])
                if drawn is None:
                    return
                if self.event_type == "power":
                    value = round(drawn) if drawn > 1 else round(drawn, 3)
                else:
                    value = max(1, round(drawn))
            if gap is None:
                return
            t += gap
            yield to_event(
                self.resource, self.event_type, round(t, 3), value, self.source, f"random[{n}]"
            )
            n += 1
            if self.event_type == "churn":
                value = "up" if value == "down" else "down"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "resource": self.resource,
            "event_type": self.event_type,
            "generator": self.generator,
            "first_value": self.first_value,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RandomSource:
        return cls(
            data["resource"], data["event_type"], data["generator"], data["first_value"],
            int(data["seed"]), data["source"],
        )  # fmt: skip
