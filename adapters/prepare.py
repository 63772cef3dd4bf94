"""Preparing reserved machines as pnodes: the one call every adapter's ``prepare`` makes.

The work itself — SSH in (through the gateway), root, kernel checks, iproute2 >= 3.16,
LXC, pydistem, ``distemd`` on every machine (the first one runs the coordinator), pnode
init — is ``distem bootstrap``'s (:mod:`pydistem.bootstrap`); this module adapts an
adapter's machines, options and progress to it, and undoes it on release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from pydistem.adapters.base import Options, Prepared, Progress
from pydistem.adapters.credentials import Secret
from pydistem.errors import PydistemError
from pydistem.model.daemon import DaemonSettings
from pydistem.model.machines import Machine


class BootstrapSettings(Options):
    """The ``bootstrap:`` key of an adapter's section: where and how pydistem is installed
    and run on the machines (defaults: those of ``distem bootstrap``, see docs/bootstrap.md).
    ``{index}`` and ``{id}`` in ``venv``, ``state_dir`` and ``tag`` are replaced per
    machine, for machines that share a file system."""

    venv: str | None = None
    state_dir: str | None = None
    tag: str | None = None
    wheel: Path | None = None
    reinstall: bool = False
    install_packages: bool = True
    strict: bool = True
    connect_timeout: float = Field(10.0, gt=0)
    coordinator_port: int = Field(4567, gt=0, lt=65536)
    agent_port: int = Field(4568, gt=0, lt=65536)
    #: the coordinator's ``--distem-compat`` / ``--distem-compat-allow`` (set from the
    #: platform file's ``daemon:`` section by ``distem deploy``)
    distem_compat: bool = False
    distem_compat_allow: str | None = None

    def with_daemon(self, daemon: DaemonSettings) -> BootstrapSettings:
        """These settings plus what a platform file's ``daemon:`` section asks for."""
        if not daemon.distem_compat:
            return self
        return self.model_copy(
            update={"distem_compat": True, "distem_compat_allow": daemon.allow_string()}
        )

    def to_options(self, key: Path | None) -> Any:
        """The :class:`pydistem.bootstrap.BootstrapOptions` these settings ask for."""
        from pydistem.bootstrap import BootstrapOptions

        given = self.model_dump(exclude_none=True)
        return BootstrapOptions(key=key, **given)


def prepare_machines(
    machines: list[Machine], key: Path | None, settings: BootstrapSettings, progress: Progress
) -> Prepared:
    """Bootstrap ``machines`` (idempotent). Raises PydistemError naming every machine
    that failed, with its phase and reason; with ``strict`` nothing is left started."""
    from pydistem.bootstrap import prepare

    progress.step(f"bootstrapping {len(machines)} machine(s): root, checks, pydistem, distemd")

    def event(report: Any, phase: str, status: str) -> None:
        if status != "start":
            progress.update(f"{report.id}: {phase} {status}")

    report = prepare(machines, settings.to_options(key), event)
    if not report.ok or report.url is None:
        failed = "; ".join(f"{m.id} ({m.phase}: {m.reason})" for m in report.failed)
        raise PydistemError(f"preparing the machines failed: {failed or 'no coordinator'}")
    ready = {m.id for m in report.ready}
    return Prepared(
        machines=[m for m in machines if m.id in ready],
        coordinator=report.url,
        token=Secret(report.token) if report.token else None,
        key=key,
    )


def teardown_machines(
    machines: list[Machine], key: Path | None, settings: BootstrapSettings, progress: Progress
) -> list[str]:
    """Leave nothing of pydistem running on ``machines`` (platform quit, distemd stopped,
    journals cleaned). Idempotent; returns the ids of machines that could not be reached
    or cleaned (their reason goes to progress)."""
    from pydistem.bootstrap import teardown

    progress.step(f"stopping pydistem on {len(machines)} machine(s)")
    report = teardown(machines, settings.to_options(key))
    bad = []
    for m in report.machines:
        if m.state != "ready":
            bad.append(m.id)
            progress.update(f"{m.id}: {m.phase} failed: {m.reason}")
    return bad
