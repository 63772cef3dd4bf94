"""Pnode probes: what the pnode agents sample, how often, under which name.

A probe reads one resource of its pnode ``frequency`` times per second and keeps a time
series ``[[time, [values...]], ...]`` (Distem's data collection):

=========  ==================================  ==============================================
type       reads                               values
=========  ==================================  ==============================================
bw         ``/proc/net/dev`` of ``interface``  bytes/s received, bytes/s sent (since the last)
loadavg    ``/proc/loadavg``                   load average over 1, 5, 15 minutes
cpu        ``/proc/stat``                      % of the pnode's CPU time busy (since the last)
memory     ``/proc/meminfo``                   MiB used, MiB available
=========  ==================================  ==============================================
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from pydistem.errors import ValidationError
from pydistem.model import names

ProbeType = Literal["bw", "loadavg", "cpu", "memory"]
#: the most samples a probe keeps (the oldest are dropped): a day at 1 Hz
MAX_SAMPLES = 86_400
#: sampling frequency bounds, per second
MIN_FREQUENCY, MAX_FREQUENCY = 0.001, 100.0
#: Distem's probe class names -> ours
DISTEM_TYPES = {"probebw": "bw", "probeloadavg": "loadavg"}


class Probe(BaseModel):
    """One probe: ``type`` sampled ``frequency`` times per second, its series called
    ``name`` (default: the type). ``interface`` is the network interface a ``bw`` probe
    reads (default: the pnode's default-route interface)."""

    model_config = ConfigDict(extra="forbid")

    type: ProbeType
    frequency: float = 1.0
    name: str = ""
    interface: str | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> Any:
        text = str(v).lower() if isinstance(v, str) else v
        return DISTEM_TYPES.get(text, text) if isinstance(text, str) else text

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return v if v == "" else names.check_name("name", v, names.VNODE_MAX)

    @field_validator("frequency", mode="before")
    @classmethod
    def _frequency(cls, v: Any) -> float:
        try:
            f = float(v) if not isinstance(v, bool) else float("nan")
        except (TypeError, ValueError):
            raise ValidationError(
                "frequency", f"{v!r} is not a number of samples per second"
            ) from None
        if not MIN_FREQUENCY <= f <= MAX_FREQUENCY:
            raise ValidationError(
                "frequency", f"{v!r}: samples per second in [{MIN_FREQUENCY}, {MAX_FREQUENCY}]"
            )
        return f

    @field_validator("interface")
    @classmethod
    def _interface(cls, v: str | None) -> str | None:
        return None if v is None else names.check_name("interface", v, names.VIFACE_MAX)

    @model_validator(mode="after")
    def _defaults(self) -> Probe:
        if not self.name:
            self.name = self.type
        if self.interface is not None and self.type != "bw":
            raise ValidationError("interface", f"not a parameter of a {self.type} probe")
        return self


def parse_probes(desc: Any, field: str = "probes") -> list[Probe]:
    """Probes from a list of probe mappings, or Distem's ``{type: {frequency, name,
    interface}}`` mapping (types ``bw``/``ProbeBW``, ``loadavg``/``ProbeLoadAvg``, ...).
    Names must be unique."""
    from pydistem.model.validate import parse

    if isinstance(desc, dict):
        items = []
        for kind, params in desc.items():
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise ValidationError(f"{field}.{kind}", "an object like {frequency: 1}")
            items.append({**params, "type": kind})
        where = [f"{field}.{kind}" for kind in desc]
    elif isinstance(desc, list):
        items, where = desc, [f"{field}[{i}]" for i in range(len(desc))]
    else:
        raise ValidationError(field, "a list of probes like [{type: bw, frequency: 1}]")
    if not items:
        raise ValidationError(field, "no probe given")
    out = [parse(Probe, item, w) for item, w in zip(items, where, strict=True)]
    seen: set[str] = set()
    for p, w in zip(out, where, strict=True):
        if p.name in seen:
            raise ValidationError(f"{w}.name", f"{p.name!r}: two probes have this name")
        seen.add(p.name)
    return out
