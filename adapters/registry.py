"""Finding adapters: the entry points of group ``pydistem.testbeds``, loaded lazily.

Built-ins and third-party adapters are found the same way (stevedore). Loading one
adapter never imports the others, and a broken third-party package is reported by
name without breaking ``import pydistem`` or the other adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from stevedore import DriverManager

from pydistem.adapters.base import Adapter, Options, Progress, describe
from pydistem.errors import PydistemError, ValidationError

GROUP = "pydistem.testbeds"


@dataclass(frozen=True)
class Listing:
    """One installed adapter: its description, or why it cannot be loaded."""

    name: str
    target: str
    info: dict[str, Any] | None
    error: str | None = None


def names() -> list[str]:
    """Names of the installed adapters (entry points; nothing is imported)."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def load(name: str, field: str = "testbed.adapter") -> type[Adapter]:
    """The adapter class registered as ``name``.

    Raises ValidationError (unknown name, listing the installed ones) or
    PydistemError naming the adapter when its package fails to import."""
    if name not in names():
        raise ValidationError(field, f"no adapter {name!r} is installed (installed: {names()})")
    try:
        manager = DriverManager(GROUP, name, invoke_on_load=False)
    except Exception as exc:  # a third-party import error of any kind: report it by name
        raise PydistemError(f"adapter {name!r} cannot be loaded: {_reason(exc)}") from None
    cls = manager.driver
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise PydistemError(
            f"adapter {name!r} ({manager.extensions[0].entry_point.value}) is not a "
            "subclass of pydistem.adapters.base.Adapter"
        )
    return cls


def listing() -> list[Listing]:
    """Every installed adapter with its capabilities; broken ones carry ``error``."""
    out = []
    seen = set()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in seen:
            continue
        seen.add(ep.name)
        try:
            cls = load(ep.name)
        except PydistemError as exc:
            out.append(Listing(ep.name, ep.value, None, exc.message))
            continue
        out.append(Listing(ep.name, ep.value, describe(cls)))
    return out


def split_section(section: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """A platform file's ``testbed:`` mapping -> (adapter name, its options)."""
    if not isinstance(section, Mapping):
        raise ValidationError("testbed", "must be a mapping with at least `adapter: NAME`")
    doc = dict(section)
    name = doc.pop("adapter", None)
    if not isinstance(name, str) or not name:
        raise ValidationError("testbed.adapter", f"is required (installed: {names()})")
    doc.pop("release", None)  # the engine's key, not the adapter's
    return name, doc


def create(section: Mapping[str, Any] | None, progress: Progress | None = None) -> Adapter:
    """Load the adapter a ``testbed:`` section names and validate its options.

    Contacts no testbed; raises ValidationError naming ``testbed.<key>``."""
    name, doc = split_section(section)
    cls = load(name)
    options: Options = cls.validate(doc)
    return cls(options, progress)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
