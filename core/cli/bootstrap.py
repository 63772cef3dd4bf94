"""``distem bootstrap`` and ``distem quit``: prepare machines over SSH, and leave nothing.

Progress is one rich bar per phase (how many machines went through it), then a table
of every machine's state. What bootstrap built is recorded in
``~/.config/pydistem/bootstrap.json`` (mode 0600; ``$PYDISTEM_BOOTSTRAP_FILE``) so that
``distem quit`` finds the machines, the coordinator and the token again.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pydistem.bootstrap import (
    PHASES,
    TEARDOWN_PHASES,
    BootstrapOptions,
    BootstrapReport,
    MachineReport,
    prepare,
    teardown,
)
from pydistem.bootstrap.options import DEFAULT_STATE_DIR, DEFAULT_VENV
from pydistem.cli import output
from pydistem.errors import PydistemError, ValidationError
from pydistem.model.machines import Machine, read_machine_file


def record_file() -> Path:
    env = os.environ.get("PYDISTEM_BOOTSTRAP_FILE")
    return Path(env) if env else Path.home() / ".config" / "pydistem" / "bootstrap.json"


def add_parsers(sub: Any, cmd: Callable[..., argparse.ArgumentParser]) -> None:
    p = cmd(sub, "bootstrap", "prepare machines over SSH as pnodes and start distemd on them")
    p.add_argument(
        "-f",
        "--machine-file",
        type=Path,
        required=True,
        metavar="FILE",
        help="one machine a line: [user@]host[:port]",
    )
    _ssh_args(p)
    p.add_argument("--strict", action="store_true", help="one failed machine fails the run")
    p.add_argument(
        "--distem-compat",
        action="store_true",
        help="the coordinator also serves Distem 1.x's REST routes",
    )
    p.add_argument(
        "--distem-compat-allow",
        metavar="CIDR[,CIDR]",
        help="client networks allowed on those routes (distemd's option)",
    )
    p.add_argument("--wheel", type=Path, help="pydistem wheel to install (default: built here)")
    p.add_argument(
        "--wheelhouse",
        type=Path,
        metavar="DIR",
        help="wheels of pydistem's dependencies, copied along (machines without a package "
        "index; make it with: pip wheel -w DIR pydistem)",
    )
    p.add_argument("--reinstall", action="store_true", help="install pydistem even if present")
    p.add_argument(
        "--no-install",
        action="store_true",
        help="never apt-get (LXC, iproute2): report what is missing instead",
    )
    p.add_argument("--coordinator-port", type=int, default=4567)
    p.add_argument("--agent-port", type=int, default=4568)

    p = cmd(sub, "quit", "remove the platform, stop distemd and clean every bootstrapped machine")
    p.add_argument(
        "-f",
        "--machine-file",
        type=Path,
        metavar="FILE",
        help="the machines (default: those of the last distem bootstrap)",
    )
    _ssh_args(p)


def _ssh_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gateway", metavar="USER@HOST[:PORT]", help="SSH jump host")
    p.add_argument("--key", type=Path, help="SSH private key (default ~/.ssh/id_ed25519...)")
    p.add_argument("--user", default="root", help="login user where a line names none")
    p.add_argument("--venv", default=DEFAULT_VENV, help=f"pydistem's virtualenv ({DEFAULT_VENV})")
    p.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        help=f"distemd's state dir ({DEFAULT_STATE_DIR}); may hold {{index}}, {{id}}",
    )
    p.add_argument("--tag", default="a", help="distemd --tag (may hold {index})")
    p.add_argument("--timeout", type=float, default=10.0, help="SSH connect timeout, seconds")


def _machines(args: argparse.Namespace) -> list[Machine]:
    gateway = Machine.parse(args.gateway, "gateway") if args.gateway else None
    return read_machine_file(args.machine_file, default_user=args.user, gateway=gateway)


def _options(args: argparse.Namespace) -> BootstrapOptions:
    return BootstrapOptions(
        key=args.key,
        connect_timeout=args.timeout,
        strict=getattr(args, "strict", False),
        distem_compat=getattr(args, "distem_compat", False),
        distem_compat_allow=getattr(args, "distem_compat_allow", None),
        venv=args.venv,
        state_dir=args.state_dir,
        tag=args.tag,
        coordinator_port=getattr(args, "coordinator_port", 4567),
        agent_port=getattr(args, "agent_port", 4568),
        wheel=getattr(args, "wheel", None),
        wheelhouse=getattr(args, "wheelhouse", None),
        reinstall=getattr(args, "reinstall", False),
        install_packages=not getattr(args, "no_install", False),
    )


class PhaseBars:
    """One progress bar per phase; each machine advances a bar when it passes, fails or
    skips that phase."""

    def __init__(self, phases: dict[str, str], total: int, quiet: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=output.err,
            disable=quiet,
        )
        self.tasks = {
            name: self.progress.add_task(text, total=total, note="")
            for name, text in phases.items()
        }
        self.failed: dict[str, int] = dict.fromkeys(phases, 0)

    def __call__(self, report: MachineReport, phase: str, status: str) -> None:
        task = self.tasks.get(phase)
        if task is None or status == "start":
            return
        if status == "failed":
            self.failed[phase] += 1
            self.progress.update(task, note=f"[red]{self.failed[phase]} failed[/]")
        self.progress.advance(task)

    def __enter__(self) -> PhaseBars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)


_STYLE = {"ready": "green", "failed": "red", "skipped": "yellow", "pending": "yellow"}


def uplink_cell(m: MachineReport) -> str:
    """The uplink probe's verdict in a word: can classic vnetworks use this machine?"""
    up = m.facts.get("uplink")
    if not up:
        return ""
    name = up.get("interface") or "?"
    verdict = up.get("foreign_macs")
    if verdict is True:
        return f"{name}: [green]classic ok[/]"
    if verdict is False:
        return f"{name}: [red]drops foreign MACs[/] (VXLAN only)"
    return f"{name}: [dim]not probed[/]"


def summary_table(machines: list[MachineReport], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    with_uplink = any("uplink" in m.facts for m in machines)
    columns = ["machine", "state", "role", "hostname", "address"]
    columns += ["uplink", "details"] if with_uplink else ["details"]
    for col in columns:
        table.add_column(col, overflow="fold")
    for m in machines:
        style = _STYLE.get(m.state, "")
        state = m.state if m.state != "failed" else f"failed at {m.phase}"
        lines = []
        if m.reason:
            lines.append(f"[{style}]{m.reason}[/]")
        lines += [f"[yellow]warning:[/] {w}" for w in m.warnings]
        lines += [f"[dim]{a}[/]" for a in m.actions]
        cells = [
            m.id,
            f"[{style}]{state}[/]",
            m.role or "",
            str(m.facts.get("hostname") or ""),
            str(m.facts.get("address") or ""),
        ]
        cells += [uplink_cell(m)] if with_uplink else []
        table.add_row(*cells, "\n".join(lines))
    return table


def _save_record(args: argparse.Namespace, report: BootstrapReport, path: Path) -> Path:
    token_path = path.with_name("token")
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, text in (
        (token_path, (report.token or "") + "\n"),
        (path, json.dumps(_record(args, report), indent=2) + "\n"),
    ):
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    return token_path


def _record(args: argparse.Namespace, report: BootstrapReport) -> dict[str, Any]:
    return {
        "machine_file": str(args.machine_file.resolve()),
        "machines": [str(m.machine).split(" via ")[0] for m in report.machines],
        "gateway": args.gateway,
        "key": str(args.key.resolve()) if args.key else None,
        "user": args.user,
        "venv": args.venv,
        "state_dir": args.state_dir,
        "tag": args.tag,
        "coordinator": report.coordinator,
        "url": report.url,
    }


def run_bootstrap(args: argparse.Namespace) -> int:
    machines = _machines(args)
    options = _options(args)
    with PhaseBars(PHASES, len(machines), args.json) as bars:
        report = prepare(machines, options, bars)
    if args.json:
        output.print_json(report.to_dict())
    else:
        output.out.print(summary_table(report.machines, "distem bootstrap"))
    if report.url:
        token_path = _save_record(args, report, record_file())
        if not args.json:
            output.done(
                f"coordinator {report.coordinator} at {report.url} "
                f"(token in {report.token_file} there, and in {token_path} here)"
            )
            output.out.print(
                f"  export PYDISTEM_URL={report.url} PYDISTEM_TOKEN_FILE={token_path}",
                highlight=False,
            )
            if args.gateway:
                host = report.url.split("//", 1)[1]
                output.out.print(
                    f"  (through the gateway: ssh -N -L 4567:{host} {args.gateway}, then "
                    "PYDISTEM_URL=http://127.0.0.1:4567)",
                    highlight=False,
                )
    if not report.ok:
        bad = ", ".join(m.id for m in report.failed)
        return output.error(PydistemError(f"bootstrap failed on {bad}"))
    if report.failed:
        output.note(f"{len(report.failed)} of {len(report.machines)} machines failed (see above)")
    return 0


def run_quit(args: argparse.Namespace) -> int | None:
    """Teardown of bootstrapped machines; None when there is nothing bootstrapped (the
    caller then quits the coordinator it talks to, as ``distem clean``)."""
    record: dict[str, Any] = {}
    path = record_file()
    if args.machine_file is None:
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except ValueError as exc:
            raise ValidationError(str(path), f"not JSON: {exc}") from None
        for key in ("gateway", "key", "user", "venv", "state_dir", "tag"):
            if getattr(args, key) in (None, "root", "a", DEFAULT_VENV, DEFAULT_STATE_DIR):
                value = record.get(key)
                if value is not None:
                    setattr(args, key, Path(value) if key == "key" else value)
        from pydistem.model.machines import parse_machine_lines

        gateway = Machine.parse(args.gateway, "gateway") if args.gateway else None
        machines = parse_machine_lines(record.get("machines") or [], str(path), gateway=gateway)
    else:
        machines = _machines(args)
    with PhaseBars(TEARDOWN_PHASES, len(machines), args.json) as bars:
        report = teardown(machines, _options(args), bars)
    if args.json:
        output.print_json(
            {
                "ok": report.ok,
                "quit": report.quit,
                "machines": [m.to_dict() for m in report.machines],
            }
        )
    else:
        output.out.print(summary_table(report.machines, "distem quit"))
    if not report.ok:
        bad = ", ".join(m.id for m in report.machines if m.state != "ready")
        return output.error(PydistemError(f"quit incomplete on {bad}"))
    if record:
        path.unlink(missing_ok=True)
    if not args.json:
        output.done("platform removed, every distemd stopped, nothing left on the machines")
    return 0
