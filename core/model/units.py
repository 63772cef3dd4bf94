"""Units as users write them: rates (``10mbps``, ``1gbit``), durations (``20ms``), percents.

Conventions follow tc(8): ``bit``/``kbit``/``mbit``/``gbit`` are bits per second
(x1000); ``bps``/``kbps``/``mbps``/``gbps`` are BYTES per second (x1000, times 8);
``kibit``/``mibit``/``gibit`` are binary multiples. A bare number of a rate is bits
per second. Parsers return plain numbers and raise ValidationError(field, reason).
"""

from __future__ import annotations

import re

from pydistem.errors import ValidationError

_NUM = r"(?P<num>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"

_RATE_UNITS = {
    "": 1,
    "bit": 1,
    "kbit": 1e3,
    "mbit": 1e6,
    "gbit": 1e9,
    "tbit": 1e12,
    "bps": 8,
    "kbps": 8e3,
    "mbps": 8e6,
    "gbps": 8e9,
    "tbps": 8e12,
    "kibit": 1024,
    "mibit": 1024**2,
    "gibit": 1024**3,
}
_TIME_UNITS = {
    "": 1e-6,  # tc: a bare number is microseconds
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "ms": 1e-3,
    "msec": 1e-3,
    "msecs": 1e-3,
    "us": 1e-6,
    "usec": 1e-6,
    "usecs": 1e-6,
}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3}


def _parse(field: str, value: object, units: dict[str, float], what: str) -> float:
    if isinstance(value, bool):
        raise ValidationError(field, f"{value!r} is not a {what}")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    elif isinstance(value, str):
        m = re.fullmatch(_NUM + r"(?P<unit>[A-Za-z]*)", value.strip())
        if not m:
            if value.strip().startswith("-"):
                raise ValidationError(field, f"{value!r}: a {what} cannot be negative")
            raise ValidationError(field, f"{value!r} is not a {what}")
        number, unit = float(m["num"]), m["unit"].lower()
    else:
        raise ValidationError(field, f"{value!r} is not a {what}")
    if unit not in units:
        known = ", ".join(u for u in units if u)
        raise ValidationError(field, f"{value!r}: unknown unit {unit!r} (use one of {known})")
    if number < 0:
        raise ValidationError(field, f"{value!r}: a {what} cannot be negative")
    return number * units[unit]


def parse_rate(field: str, value: object) -> float:
    """Bits per second from ``10mbps``, ``1gbit``, ``500kbit``. Zero is refused."""
    bits = _parse(field, value, _RATE_UNITS, "rate")
    if bits <= 0:
        raise ValidationError(field, f"{value!r}: a rate must be greater than zero")
    return bits


def parse_duration(field: str, value: object) -> float:
    """Seconds from ``20ms``, ``1.5s``, ``300us`` (a bare number is microseconds, as tc)."""
    return _parse(field, value, _TIME_UNITS, "duration")


def parse_percent(field: str, value: object) -> float:
    """A percentage 0..100 from ``0.5%``, ``5`` or ``"25%"``."""
    if isinstance(value, str) and value.strip().endswith("%"):
        value = value.strip()[:-1]
    pct = _parse(field, value, {"": 1.0}, "percentage")
    if pct > 100:
        raise ValidationError(field, f"{value!r}: a percentage is at most 100")
    return pct


def parse_size(field: str, value: object) -> int:
    """Bytes from ``512M``, ``2G``, ``4096`` (binary multiples)."""
    return int(_parse(field, value, _SIZE_UNITS, "size"))


_MEMORY_UNITS = {
    "": 1024**2,  # a bare number is MiB, as Distem's vmem ``mem`` (MB)
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_FREQ_UNITS = {"hz": 1e-6, "khz": 1e-3, "mhz": 1.0, "ghz": 1e3}


def parse_memory(field: str, value: object) -> int:
    """Bytes from ``512MiB``, ``1g``, ``2GB``, ``768m`` (binary multiples, as the kernel's
    memory cgroup reads them); a bare number is MiB, as Distem's ``mem``. Zero is refused."""
    size = int(_parse(field, value, _MEMORY_UNITS, "memory size"))
    if size <= 0:
        raise ValidationError(field, f"{value!r}: a memory size must be greater than zero")
    return size


_DISK_RATE_UNITS = {k: v for k, v in _MEMORY_UNITS.items() if k} | {"": 1}


def parse_disk_rate(field: str, value: object) -> int:
    """Bytes per second from ``10MiB``, ``10M/s``, ``512k``, ``1048576`` (binary multiples;
    a bare number is bytes, as the kernel's blkio files). Zero is refused."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.lower().endswith("/s"):
        text = text[:-2]
    rate = int(_parse(field, text, _DISK_RATE_UNITS, "disk rate (bytes per second)"))
    if rate <= 0:
        raise ValidationError(field, f"{value!r}: a disk rate must be greater than zero")
    return rate


def parse_mhz(field: str, value: object) -> float:
    """MHz from ``1200MHz``, ``1.2GHz``, ``800mhz``. Zero is refused."""
    mhz = _parse(field, value, _FREQ_UNITS, "frequency")
    if mhz <= 0:
        raise ValidationError(field, f"{value!r}: a frequency must be greater than zero")
    return mhz
