"""Loading the agent's drivers (runtimes, shapers) from stevedore entry points.

Entry points are the only registry, built-ins included; a driver is loaded the
first time it is asked for, so a broken third-party plugin is reported by name
and breaks nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stevedore import DriverManager
from stevedore.exception import NoMatches

from pydistem.agent.journal import Journal
from pydistem.errors import PydistemError, ValidationError

RUNTIMES = "pydistem.runtimes"
SHAPERS = "pydistem.shapers"
LIMITS = "pydistem.limits"


def _entry_points(group: str) -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=group))


def runtime_names() -> list[str]:
    return sorted(ep.name for ep in _entry_points(RUNTIMES))


def _load(group: str, name: str, field: str, args: tuple[Any, ...]) -> Any:
    known = sorted(ep.name for ep in _entry_points(group))
    if name not in known:
        raise ValidationError(
            field,
            f"unknown {group.split('.')[-1][:-1]} {name!r} "
            f"(installed: {', '.join(known) or 'none'})",
        )
    try:
        mgr = DriverManager(group, name, invoke_on_load=True, invoke_args=args)
    except NoMatches:
        raise ValidationError(field, f"{name!r} is not installed") from None
    except PydistemError:
        raise
    except Exception as exc:  # a broken third-party plugin: report it by name
        raise PydistemError(f"plugin {group}:{name} failed to load: {exc!r}") from exc
    return mgr.driver


def load_runtime(name: str, state_dir: Path, journal: Journal, field: str = "runtime") -> Any:
    return _load(RUNTIMES, name, field, (state_dir, journal))


def load_shaper(name: str, field: str = "shaper") -> Any:
    return _load(SHAPERS, name, field, ())


def load_limiter(name: str = "cgroup", field: str = "limiter") -> Any:
    return _load(LIMITS, name, field, ())
