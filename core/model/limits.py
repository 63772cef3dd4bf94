"""CPU and memory limits of a vnode: how many cores and how fast, how much memory and swap.

``cpu: {cores: 2, frequency: 0.5}`` (a fraction of the pnode's core speed) or
``frequency: 1200MHz`` (absolute, against the pnode's real frequency);
``memory: {limit: 512MiB, swap: 256MiB, soft: 256MiB}``; ``disk: {read: 10MiB, write: 5MiB}``
(bytes per second, on the device holding the vnode's rootfs unless ``device`` names one).
Values are validated here and kept as written.
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
    """The vnode's memory limit, the swap it may use on top of it, and a soft limit
    (memory cgroup).

    ``swap`` None leaves swap unlimited (the kernel's default); ``0`` forbids swapping.
    ``soft`` is the memory the kernel reclaims the vnode down to first when the pnode runs
    short (v1 ``memory.soft_limit_in_bytes``, v2 ``memory.low``: below it the vnode's
    memory is protected); it never kills. ``limit`` may be left out when ``soft`` is given.
    """

    limit: str | None = None
    swap: str | None = None
    soft: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """``memory: 512MiB`` stands for ``memory: {limit: 512MiB}``."""
        if isinstance(data, str | int | float) and not isinstance(data, bool):
            return {"limit": data}
        return data

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, v: Any) -> Any:
        if v is None:
            return v
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

    @field_validator("soft", mode="before")
    @classmethod
    def _soft(cls, v: Any) -> Any:
        if v is None:
            return v
        units.parse_memory("soft", v)
        return str(v)

    @model_validator(mode="after")
    def _consistent(self) -> MemoryLimit:
        if self.limit is None:
            if self.soft is None:
                raise ValidationError("limit", "give a limit, a soft limit, or both")
            if self.swap is not None:
                raise ValidationError("swap", "a swap limit needs a memory limit")
        elif self.soft is not None and self.soft_bytes() > self.limit_bytes():  # type: ignore[operator]
            raise ValidationError("soft", f"{self.soft} is above the memory limit {self.limit}")
        return self

    def limit_bytes(self) -> int | None:
        return None if self.limit is None else units.parse_memory("limit", self.limit)

    def swap_bytes(self) -> int | None:
        if self.swap is None:
            return None
        return 0 if self.swap == "0" else units.parse_memory("swap", self.swap)

    def soft_bytes(self) -> int | None:
        return None if self.soft is None else units.parse_memory("soft", self.soft)


class DiskThrottle(_Model):
    """Block I/O limits of a vnode on one device (blkio/io cgroup throttling).

    ``device`` is a block device path on the vnode's pnode (``/dev/vda``); None means the
    device holding the vnode's rootfs (its folder, for ``netns`` vnodes). ``read`` and
    ``write`` are bytes per second (``10MiB``, ``512k``, a bare number is bytes; ``/s``
    may be written); ``read_iops``/``write_iops`` are operations per second. A limit left
    out is no limit.
    """

    device: str | None = None
    read: str | None = None
    write: str | None = None
    read_iops: int | None = None
    write_iops: int | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValidationError("device", f"{v!r} is not a device path like /dev/vda")
        return v

    @field_validator("read", "write", mode="before")
    @classmethod
    def _rate(cls, v: Any, info: Any) -> Any:
        if v is None:
            return v
        units.parse_disk_rate(info.field_name, v)
        return str(v)

    @field_validator("read_iops", "write_iops", mode="before")
    @classmethod
    def _iops(cls, v: Any, info: Any) -> Any:
        if v is None:
            return v
        try:
            n = int(str(v))
        except ValueError:
            raise ValidationError(info.field_name, f"{v!r} is not a whole number") from None
        if n <= 0:
            raise ValidationError(info.field_name, f"{v!r}: must be greater than zero")
        return n

    @model_validator(mode="after")
    def _some(self) -> DiskThrottle:
        if self.read is None and self.write is None and not self.read_iops and not self.write_iops:
            raise ValidationError("read", "give read, write, read_iops or write_iops")
        return self

    def read_bps(self) -> int | None:
        return None if self.read is None else units.parse_disk_rate("read", self.read)

    def write_bps(self) -> int | None:
        return None if self.write is None else units.parse_disk_rate("write", self.write)


def check_disk(throttles: list[DiskThrottle], field: str = "disk") -> list[DiskThrottle]:
    """Refuse two throttles for the same device."""
    seen: set[str | None] = set()
    for i, t in enumerate(throttles):
        if t.device in seen:
            raise ValidationError(
                field, f"entry {i}: {t.device or 'the rootfs device'} is throttled twice"
            )
        seen.add(t.device)
    return throttles


def parse_disk(value: Any, field: str = "disk") -> list[DiskThrottle] | None:
    """A vnode's ``disk``: one throttle object or a list of them (one per device);
    None, ``{}`` or ``[]`` is no throttling."""
    from pydistem.model.validate import parse

    if value is None or value == [] or value == {}:
        return None
    items = value if isinstance(value, list) else [value]
    return check_disk(
        [
            t if isinstance(t, DiskThrottle) else parse(DiskThrottle, t, f"{field}[{i}]")
            for i, t in enumerate(items)
        ],
        field,
    )
