"""What the ``distem`` CLI prints: rich tables, JSON, progress spinners, errors.

Tables go to stdout, progress and errors to stderr, so ``--json`` output and piped
tables stay clean. Nothing here talks to the coordinator.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pydistem.errors import PydistemError, ValidationError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATUS_STYLE = {
    "RUNNING": "green",
    "INIT": "cyan",
    "CONFIGURING": "yellow",
    "FROZEN": "blue",
    "DOWN": "dim",
    "FAILED": "bold red",
}


def print_json(data: Any) -> None:
    """Machine-readable output (``--json``): plain JSON on stdout, no colours."""
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


def error(exc: BaseException) -> int:
    """Print ``error: <field>: <reason>`` in red on stderr; return the exit status.

    2 for validation errors (bad input, nothing changed), 1 otherwise.
    """
    if isinstance(exc, ValidationError) or getattr(exc, "field", None):
        field = getattr(exc, "field", None)
        reason = getattr(exc, "reason", None) or str(exc)
        text = f"{field}: {reason}" if field and not reason.startswith(f"{field}:") else reason
        err.print(f"[bold red]error:[/] {escape(text)}")
        return 2
    err.print(f"[bold red]error:[/] {escape(str(exc) or type(exc).__name__)}")
    return 1


def count_status(vnodes: list[dict[str, Any]], names: Any, status: str = "RUNNING") -> str:
    """``3/10 running, 1 failed`` over the vnodes named (None = all): a spinner's status."""
    if names is not None:
        vnodes = [v for v in vnodes if v.get("name") in names]
    n = sum(1 for v in vnodes if v.get("status") == status)
    failed = sum(1 for v in vnodes if v.get("status") == "FAILED")
    return f"{n}/{len(vnodes)} {status.lower()}" + (f", {failed} failed" if failed else "")


def note(text: str) -> None:
    err.print(f"[dim]{escape(text)}[/]")


def addresses(vnode: dict[str, Any]) -> list[str]:
    """``if0=10.144.0.1 (vnet)`` strings for every viface of a vnode."""
    shown = []
    for vif in vnode.get("vifaces") or []:
        addr = vif.get("address") or "-"
        shown.append(f"{vif.get('name')}={addr} ({vif.get('vnetwork') or '-'})")
    return shown


def vnodes_table(vnodes: list[dict[str, Any]]) -> Table:
    table = Table(title="vnodes", title_justify="left")
    for col in ("name", "runtime", "host", "status", "addresses"):
        table.add_column(col)
    for v in vnodes:
        status = str(v.get("status", "?"))
        style = STATUS_STYLE.get(status, "")
        shown = f"[{style}]{status}[/]" if style else status
        if status == "FAILED" and v.get("error"):
            shown += f"\n[red]{escape(str(v['error']))}[/]"
        table.add_row(
            escape(str(v.get("name"))),
            escape(str(v.get("runtime", ""))),
            escape(str(v.get("host") or "-")),
            shown,
            escape("\n".join(addresses(v)) or "-"),
        )
    return table


def vnetworks_table(vnetworks: list[dict[str, Any]]) -> Table:
    table = Table(title="vnetworks", title_justify="left")
    for col in ("name", "address", "type", "root interface", "why"):
        table.add_column(col)
    for n in vnetworks:
        kind = str(n.get("network_type", "bridge"))
        if kind == "vxlan" and n.get("vni") is not None:
            kind += f" {n['vni']}"
        table.add_row(
            escape(str(n.get("name"))),
            escape(str(n.get("address"))),
            escape(kind),
            escape(str(n.get("root_interface") or "-")),
            escape(str(n.get("reason") or "")),
        )
    return table


def vroutes_table(vroutes: list[dict[str, Any]]) -> Table:
    table = Table(title="vroutes", title_justify="left")
    for col in ("source", "destination", "gateway"):
        table.add_column(col)
    for r in vroutes:
        table.add_row(*(escape(str(r.get(k))) for k in ("source", "destination", "gateway")))
    return table


def pnodes_table(pnodes: list[dict[str, Any]]) -> Table:
    table = Table(title="pnodes", title_justify="left")
    for col in ("id", "address", "hostname", "status", "cores", "memory", "runtimes"):
        table.add_column(col)
    for p in pnodes:
        status = str(p.get("status", "?"))
        table.add_row(
            escape(str(p.get("id"))),
            escape(f"{p.get('address')}:{p.get('port', '')}".rstrip(":")),
            escape(str(p.get("hostname") or "-")),
            f"[{STATUS_STYLE.get(status, '')}]{status}[/]" if status in STATUS_STYLE else status,
            str(p.get("cores", "")),
            f"{p.get('memory_mb', 0)} MB",
            escape(", ".join(p.get("runtimes") or [])),
        )
    return table


def exec_results_table(results: dict[str, Any]) -> Table:
    """One row per vnode: exit code and output of a command run everywhere."""
    table = Table(title="command results", title_justify="left")
    for col in ("vnode", "exit", "output"):
        table.add_column(col)
    for name, res in results.items():
        text = (res.stdout + (res.stderr and f"\n{res.stderr}")).rstrip()
        code = f"[green]{res.exit_code}[/]" if res.ok else f"[red]{res.exit_code}[/]"
        table.add_row(escape(name), code, escape(text))
    return table


def ping_table(names: list[str], reach: dict[str, dict[str, bool | None]]) -> Table:
    """The ✓/✗ grid: row = source vnode, column = destination; ``None`` = not tested."""
    table = Table(title="ping matrix (row pings column)", title_justify="left")
    table.add_column("from \\ to")
    for name in names:
        table.add_column(escape(name), justify="center")
    for src in names:
        cells = []
        for dst in names:
            ok = reach.get(src, {}).get(dst)
            cells.append("·" if src == dst else "[dim]?[/]" if ok is None else
                         "[green]✓[/]" if ok else "[bold red]✗[/]")  # fmt: skip
        table.add_row(escape(src), *cells)
    return table


@contextmanager
def spinner(
    label: str, poll: Callable[[], str] | None = None, every: float = 1.0
) -> Iterator[None]:
    """Show ``label`` with a spinner on stderr while the block runs.

    ``poll`` (called from a thread every ``every`` seconds) returns a short status
    such as ``3/10 RUNNING`` shown after the label; its errors are ignored.
    """
    stop = threading.Event()
    with err.status(escape(label), spinner="dots") as status:
        thread = None
        if poll is not None:

            def watch() -> None:
                while not stop.wait(every):
                    with suppress(PydistemError):
                        status.update(f"{escape(label)} [dim]{escape(poll())}[/]")

            thread = threading.Thread(target=watch, daemon=True)
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=2)


def done(label: str) -> None:
    err.print(f"[green]✓[/] {escape(label)}")
