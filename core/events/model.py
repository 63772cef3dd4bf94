"""Timed events as data: one ``Event`` (at T, do ACTION on a vnode or viface) and one
``Churn`` (random failures and recoveries of chosen vnodes, from a seed).

Both are validated here, at the edge (platform file, REST, client, CLI): times, units,
actions and their parameters. Whether the vnode and viface exist is checked by the
engine, which knows the platform. See docs/events.md.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from pydistem.errors import ValidationError
from pydistem.model import names
from pydistem.model.limits import DiskThrottle, check_disk
from pydistem.model.specs import Traffic
from pydistem.model.validate import parse

#: actions on a vnode
VNODE_ACTIONS = ("stop", "start", "freeze", "unfreeze", "cpu", "memory", "disk")
#: actions on one viface of a vnode
VIFACE_ACTIONS = ("traffic", "viface_down", "viface_up")
ACTIONS = VIFACE_ACTIONS + VNODE_ACTIONS
#: the Traffic keys an event may change (written flat on the event)
TRAFFIC_KEYS = tuple(Traffic.model_fields)
#: the value of a limit a traffic event removes
NONE = "none"

Action = Literal[
    "traffic",
    "viface_down",
    "viface_up",
    "stop",
    "start",
    "freeze",
    "unfreeze",
    "cpu",
    "memory",
    "disk",
]

_TIME_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0, "h": 3600.0}


def parse_time(field: str, value: object) -> float:
    """Seconds from ``1.5``, ``"1.5"``, ``"1.5s"``, ``"500ms"``, ``"2min"``, ``"1h"``.

    A bare number is seconds (as in Distem's traces). Negative, NaN or infinite
    times and unknown units raise ValidationError naming ``field``.
    """
    if isinstance(value, bool) or value is None:
        raise ValidationError(field, f"{value!r} is not a time (write e.g. 1.5s or 500ms)")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if not m:
            raise ValidationError(field, f"{value!r} is not a time (write e.g. 1.5s or 500ms)")
        unit = m.group(2).lower()
        if unit not in _TIME_UNITS:
            known = ", ".join(u for u in _TIME_UNITS if u)
            raise ValidationError(field, f"{value!r}: unknown unit {unit!r} (use one of {known})")
        seconds = float(m.group(1)) * _TIME_UNITS[unit]
    else:
        raise ValidationError(field, f"{value!r} is not a time (write e.g. 1.5s or 500ms)")
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValidationError(field, f"{value!r} is not a finite time")
    if seconds < 0:
        raise ValidationError(field, f"{value!r}: a time cannot be negative")
    return seconds


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Event(_Model):
    """At ``at`` seconds after the player starts, apply ``action`` to ``vnode``
    (and ``viface`` for viface actions).

    ``traffic`` holds the limits a ``traffic`` event changes (the others are kept;
    ``none`` removes one); in a document they are written flat on the event
    (``bandwidth: 10mbit``). ``cpu`` holds what a ``cpu`` event sets.
    """

    at: float
    action: Action
    vnode: str
    viface: str | None = None
    direction: Literal["input", "output", "both"] = "both"
    traffic: dict[str, str] | None = None
    cpu: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None
    disk: list[DiskThrottle] | None = None
    source: str = ""
    id: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat_traffic(cls, data: Any) -> Any:
        """``bandwidth: 10mbit`` on the event stands for ``traffic: {bandwidth: 10mbit}``."""
        if not isinstance(data, dict):
            raise ValidationError("event", "an event is a mapping with at, action, vnode, ...")
        flat = [k for k in data if k in TRAFFIC_KEYS]
        if flat:
            data = dict(data)
            if data.get("traffic") is not None:
                raise ValidationError(flat[0], "give the limits flat or in traffic, not both")
            data["traffic"] = {k: data.pop(k) for k in flat}
        if "at" not in data:
            raise ValidationError("at", "is required (seconds after start, e.g. 1.5s)")
        data = dict(data)
        data["at"] = parse_time("at", data["at"])
        return data

    @field_validator("vnode")
    @classmethod
    def _vnode(cls, v: str) -> str:
        return names.check_name("vnode", v, names.VNODE_MAX)

    @field_validator("viface")
    @classmethod
    def _viface(cls, v: str | None) -> str | None:
        return None if v is None else names.check_name("viface", v, names.VIFACE_MAX)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        """``memory: 256MiB`` stands for ``memory: {limit: 256MiB}``."""
        if isinstance(v, str | int | float) and not isinstance(v, bool):
            return {"limit": v}
        return v

    @field_validator("disk", mode="before")
    @classmethod
    def _disk(cls, v: Any) -> Any:
        """``disk: {read: 10MiB}`` stands for a list of one throttle; ``none`` for ``[]``."""
        if v is None:
            return v
        if isinstance(v, str) and v.strip().lower() == NONE:
            return []
        if isinstance(v, dict):
            return [v]
        if not isinstance(v, list):
            raise ValidationError("disk", "a throttle like {read: 10MiB} or a list of them")
        return v

    @field_validator("traffic", mode="before")
    @classmethod
    def _traffic(cls, v: Any) -> Any:
        if v is None:
            return v
        if not isinstance(v, dict):
            raise ValidationError("traffic", "a mapping of limits, e.g. {bandwidth: 10mbit}")
        out: dict[str, str] = {}
        for key, value in v.items():
            if key not in TRAFFIC_KEYS:
                raise ValidationError(str(key), f"not a traffic limit (known: {TRAFFIC_KEYS})")
            if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
                out[key] = NONE
                continue
            parse(Traffic, {key: value})
            out[key] = str(value)
        return out

    @model_validator(mode="after")
    def _consistent(self) -> Event:
        if self.action in VIFACE_ACTIONS and not self.viface:
            raise ValidationError("viface", f"a {self.action} event names a viface")
        if self.action in VNODE_ACTIONS and self.viface:
            raise ValidationError("viface", f"a {self.action} event acts on a whole vnode")
        if self.action == "traffic":
            if not self.traffic:
                raise ValidationError(
                    "traffic", "a traffic event changes at least one limit (bandwidth: 10mbit)"
                )
        elif self.traffic:
            raise ValidationError(next(iter(self.traffic)), f"not a parameter of {self.action}")
        if self.action == "cpu":
            if not self.cpu:
                raise ValidationError("cpu", "a cpu event sets e.g. cpu: {frequency: 0.5}")
        elif self.cpu is not None:
            raise ValidationError("cpu", f"not a parameter of {self.action}")
        if self.action == "memory":
            if not self.memory:
                raise ValidationError("memory", "a memory event sets e.g. memory: {limit: 256MiB}")
        elif self.memory is not None:
            raise ValidationError("memory", f"not a parameter of {self.action}")
        if self.disk:
            check_disk(self.disk)
        if self.action == "disk":
            if self.disk is None:
                raise ValidationError("disk", "a disk event sets e.g. disk: {read: 10MiB}")
        elif self.disk is not None:
            raise ValidationError("disk", f"not a parameter of {self.action}")
        if self.direction != "both" and self.action != "traffic":
            raise ValidationError("direction", f"not a parameter of {self.action}")
        return self

    def target(self) -> str:
        return f"{self.vnode}.{self.viface}" if self.viface else self.vnode

    def describe(self) -> str:
        """What the event does, in a few words (for tables and the log)."""
        if self.action == "traffic":
            what = ", ".join(f"{k}={v}" for k, v in (self.traffic or {}).items())
            return f"{self.direction}: {what}"
        if self.action in ("cpu", "memory"):
            return ", ".join(f"{k}={v}" for k, v in (getattr(self, self.action) or {}).items())
        if self.action == "disk":
            return (
                "; ".join(
                    ", ".join(f"{k}={v}" for k, v in t.model_dump(exclude_none=True).items())
                    for t in self.disk or []
                )
                or "none"
            )
        return ""


class Churn(_Model):
    """Random failures of ``vnodes`` and their recoveries, reproducible from ``seed``.

    Each vnode fails after an exponentially distributed up time of mean ``1/rate``
    seconds and recovers after an exponentially distributed down time of mean
    ``downtime``, from ``start`` until ``until`` (a failure in the window always
    gets its recovery). ``mode`` says what a failure is: ``stop`` (stop/start the
    vnode: processes killed, links down) or ``freeze`` (freeze/unfreeze).
    """

    vnodes: list[str] = Field(min_length=1)
    rate: float
    downtime: float
    seed: int
    until: float
    start: float = 0.0
    mode: Literal["stop", "freeze"] = "stop"

    @field_validator("vnodes", mode="before")
    @classmethod
    def _groups(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(n, str) for n in v):
            raise ValidationError("vnodes", "a list of vnode names or groups (node-[1-5])")
        return list(dict.fromkeys(n for p in v for n in names.expand_group(p, "vnodes")))

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise ValidationError("rate", f"{v!r} is not a number of failures per second")
        try:
            rate = float(str(v).strip().removesuffix("/s"))
        except ValueError:
            raise ValidationError("rate", f"{v!r} is not a number of failures per second") from None
        if not math.isfinite(rate) or rate <= 0:
            raise ValidationError("rate", f"{v!r}: failures per second must be > 0")
        return rate

    @field_validator("downtime", "until", "start", mode="before")
    @classmethod
    def _time(cls, v: Any, info: Any) -> float:
        return parse_time(info.field_name, v)

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValidationError("seed", f"{v!r} is not an integer")
        return v

    @model_serializer(mode="wrap")
    def _wrapped(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A churn item is written ``{churn: {...}}`` in an event list, and dumps so."""
        return {"churn": handler(self)}

    @model_validator(mode="after")
    def _window(self) -> Churn:
        if self.downtime <= 0:
            raise ValidationError("downtime", "the mean down time must be > 0")
        if self.until <= self.start:
            raise ValidationError("until", f"must be after start ({self.start}s)")
        return self


def parse_item(data: Any, field: str) -> Event | Churn:
    """One item of an event list: an event, or ``{churn: {...}}``."""
    if isinstance(data, dict) and "churn" in data:
        if set(data) != {"churn"}:
            extra = sorted(set(data) - {"churn"})[0]
            raise ValidationError(f"{field}.{extra}", "a churn item holds only churn")
        return parse(Churn, data["churn"], f"{field}.churn")
    return parse(Event, data, field)


def parse_items(items: Any, field: str = "events") -> list[Event | Churn]:
    """An event list (events and churn items); the first bad one raises, naming it."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValidationError(field, "a list of events")
    return [parse_item(item, f"{field}[{i}]") for i, item in enumerate(items)]
