"""CPU and memory limits of a vnode: how many cores and how fast, how much memory and swap.

``cpu: {cores: 2, frequency: 0.5}`` (a fraction of the pnode's core speed) or
``frequency: 1200MHz`` (absolute, against the pnode's real frequency);
``memory: {limit: 512MiB, swap: 256MiB}``. Values are validated here and kept as written.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from pydistem.errors import ValidationError
from pydistem.model import units


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def parse_frequency(field: str, value: Any) -> float | str:
    """A fraction in (0, 1] (``0.5``, ``"50%"``) or an absolute frequency (``"1200MHz"``).

    Returns the fraction as a float, or the frequency normalised as ``"<n>MHz"``.
    """
    if isinstance(value, bool) or value is None:
        raise ValidationError(field, f"{value!r} is not a fraction in (0, 1] nor a frequency")
    if isinstance(value, str):
        text = value.strip()
        if text.lower().endswith("hz"):
            return f"{units.parse_mhz(field, text):g}MHz"
        if text.endswith("%"):
            value = units.parse_percent(field, text) / 100
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValidationError(
                    field, f"{value!r} is not a fraction in (0, 1] nor a frequency like 1200MHz"
                ) from None
    if not isinstance(value, int | float):
        raise ValidationError(field, f"{value!r} is not a fraction in (0, 1] nor a frequency")
    fraction = float(value)
    if not 0 < fraction <= 1:
        raise ValidationError(
            field,
            f"{value!r}: a fraction of the core speed must be in (0, 1] "
            "(write an absolute frequency as e.g. 1200MHz)",
        )
    return fraction


class CpuLimit(_Model):
    """How many of the pnode's cores a vnode gets (cpuset) and at which speed (CFS quota).

    ``cores`` None means every core of the pnode, unpinned. ``pcores`` pins the vnode to
    those pnode cores; left out, the agent picks cores no other vnode uses when it can.
    """

    cores: int | None = None
    frequency: float | str = 1.0
    pcores: list[int] | None = None

    @field_validator("cores", mode="before")
    @classmethod
    def _cores(cls, v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, bool):
            raise ValidationError("cores", f"{v!r} is not a number of cores")
        try:
            n = int(v) if not isinstance(v, float) or v.is_integer() else None
        except (TypeError, ValueError):
            n = None
        if n is None:
            raise ValidationError("cores", f"{v!r} is not a whole number of cores")
        if n < 1:
            raise ValidationError("cores", f"{v!r}: a vnode needs at least 1 core")
        return n

    @field_validator("frequency", mode="before")
    @classmethod
    def _frequency(cls, v: Any) -> float | str:
        return parse_frequency("frequency", v)

    @field_validator("pcores")
    @classmethod
    def _pcores(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if not v or any(c < 0 for c in v):
            raise ValidationError("pcores", f"{v!r}: a non-empty list of core numbers >= 0")
        if len(set(v)) != len(v):
            raise ValidationError("pcores", f"{v!r}: a core appears twice")
        return sorted(v)

    @model_validator(mode="after")
    def _consistent(self) -> CpuLimit:
        if self.pcores is not None:
            if self.cores is None:
                object.__setattr__(self, "cores", len(self.pcores))
            elif self.cores != len(self.pcores):
                raise ValidationError(
                    "pcores", f"{len(self.pcores)} cores listed for cores: {self.cores}"
                )
        return self

    def fraction(self, pnode_mhz: float) -> float:
        """The share of each core's time: the fraction, or MHz over the pnode's MHz."""
        if isinstance(self.frequency, float):
            return self.frequency
        return units.parse_mhz("frequency", self.frequency) / pnode_mhz


class MemoryLimit(_Model):
    """The vnode's memory limit and the swap it may use on top of it (memory cgroup).

    ``swap`` None leaves swap unlimited (the kernel's default); ``0`` forbids swapping.
    """

    limit: str
    swap: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """``memory: 512MiB`` stands for ``memory: {limit: 512MiB}``."""
        if isinstance(data, str | int | float) and not isinstance(data, bool):
            return {"limit": data}
        return data

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, v: Any) -> str:
        size = units.parse_memory("limit", v)
        if size < 4 * 1024**2:
            raise ValidationError("limit", f"{v!r}: at least 4MiB (nothing runs in less)")
        return str(v)

    @field_validator("swap", mode="before")
    @classmethod
    def _swap(cls, v: Any) -> Any:
        if v is None:
            return v
        if v in (0, "0"):
            return "0"
        units.parse_memory("swap", v)
        return str(v)

    def limit_bytes(self) -> int:
        return units.parse_memory("limit", self.limit)

    def swap_bytes(self) -> int | None:
        if self.swap is None:
            return None
        return 0 if self.swap == "0" else units.parse_memory("swap", self.swap)
