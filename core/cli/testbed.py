"""``distem testbeds``, ``distem release`` and ``distem deploy`` of a file with ``testbed:``.

A platform file with a ``testbed:`` section is deployed as: reserve (saved at once under
the state dir) -> prepare -> initialise the machines as pnodes -> build the platform ->
run -> release (when asked, or on error) -> a summary. Progress goes to stderr; no
credential is ever printed (adapters hold them as ``Secret``s, messages are redacted).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any
from urllib.parse import urlparse

from rich.markup import escape
from rich.table import Table

from pydistem.adapters import fit, registry
from pydistem.adapters.base import Prepared
from pydistem.adapters.credentials import redact
from pydistem.adapters.lifecycle import ReservationSession, release_policy, release_saved
from pydistem.adapters.prepare import BootstrapSettings
from pydistem.adapters.state import ReservationStore
from pydistem.adapters.tunnel import Tunnel
from pydistem.cli import deploy, output
from pydistem.client import Client
from pydistem.errors import PydistemError
from pydistem.model.platform_file import Platform, load_document, platform_from_dict


class CliProgress:
    """Adapter progress as lines on stderr (steps bold, updates dim), redacted."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def _stamp(self) -> str:
        return f"[{time.monotonic() - self.started:5.0f}s]"

    def step(self, message: str) -> None:
        output.err.print(f"[cyan]{self._stamp()}[/] {escape(redact(message))}")

    def update(self, message: str) -> None:
        output.err.print(f"[dim]{self._stamp()}   {escape(redact(message))}[/]")


def list_testbeds(as_json: bool) -> int:
    """``distem testbeds``: every installed adapter, its capabilities and option keys."""
    rows = registry.listing()
    if as_json:
        output.print_json(
            [
                {"name": r.name, "entry_point": r.target, **(r.info or {}), "error": r.error}
                for r in rows
            ]
        )
        return 0
    table = Table(title="testbed adapters (group pydistem.testbeds)", title_justify="left")
    for col in ("name", "capabilities", "summary"):
        table.add_column(col)
    for r in rows:
        if r.info is None:
            table.add_row(r.name, "[red]cannot load[/]", escape(f"{r.target}: {r.error}"))
        else:
            table.add_row(
                r.name,
                ", ".join(r.info["capabilities"]) or "-",
                escape(r.info["summary"]),
            )
    output.out.print(table)
    return 0


def reservations(as_json: bool) -> int:
    """``distem reservations``: the saved reservations and what their testbed says now."""
    rows = []
    for res in ReservationStore().all():
        cls = registry.load(res.testbed, f"reservation {res.key}")
        try:
            adapter = cls(cls.validate(res.options, f"reservation {res.key}"))
            st = adapter.status(res)
            state, message = st.state, st.message
        except PydistemError as exc:
            state, message = "unknown", exc.message
        rows.append(
            {
                "key": res.key,
                "state": state,
                "message": message,
                "machines": [str(m) for m in res.machines],
                "expires_at": res.expires_at,
            }
        )
    if as_json:
        output.print_json(rows)
        return 0
    table = Table(title="saved reservations", title_justify="left")
    for col in ("reservation", "state", "machines", "ends"):
        table.add_column(col)
    for r in rows:
        ends = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r["expires_at"]))
            if r["expires_at"]
            else "-"
        )
        table.add_row(
            r["key"],
            f"{r['state']} ({escape(r['message'])})",
            escape(", ".join(r["machines"])),
            ends,
        )
    output.out.print(table)
    return 0


def release(keys: list[str], as_json: bool) -> int:
    """``distem release [KEY...]``: end saved reservations (all by default)."""
    store = ReservationStore()
    if not keys and not store.all():
        if as_json:
            output.print_json({"released": []})
        else:
            output.done(f"no saved reservation in {store.directory}")
        return 0
    done = release_saved(store, keys or None, CliProgress())
    if as_json:
        output.print_json({"released": [r.key for r in done]})
    for r in done:
        output.done(f"released {r.key}")
    return 0


def deploy_file(
    client: Client,
    path: str,
    run: str | None,
    destroy_after: bool,
    timeout: float,
    as_json: bool,
    release_flag: bool | None,
) -> int:
    """``distem deploy FILE``: with a ``testbed:`` section, the whole reserve-to-release
    flow; without, the local deploy."""
    doc = load_document(path)
    section = doc.get("testbed") if isinstance(doc, dict) else None
    if section is None:
        platform = platform_from_dict(doc, path)  # bad file: ValidationError, nothing starts
        return deploy.deploy(client, path, run, destroy_after, timeout, as_json, platform=platform)
    platform_from_dict({"testbed": section}, path)  # the section is a mapping
    progress = CliProgress()
    session = ReservationSession.from_section(section, progress)
    adapter = session.adapter
    # the whole file, checked before anything is reserved (addresses: stand-in subnets)
    planned = fit.fit(
        doc,
        testbed=adapter.name,
        capabilities=adapter.capabilities,
        subnets=fit.placeholders(adapter.planned_subnets()),
        machines=2,
        source=path,
    )
    bootstrap = getattr(adapter.options, "bootstrap", None)
    if isinstance(bootstrap, BootstrapSettings):  # the coordinator its bootstrap starts
        adapter.options.bootstrap = bootstrap.with_daemon(planned.platform.daemon)  # type: ignore[attr-defined]
    policy = release_policy(section) if release_flag is None else release_flag
    destroyed = run is not None or destroy_after
    summary: dict[str, Any] = {"testbed": session.adapter.name, "file": path}
    status = 1
    failure: BaseException | None = None
    try:
        res = session.reserve()
        summary["reservation"] = res.key
        summary["machines"] = [str(m) for m in res.machines]
        output.done(f"reserved {res.key}: {len(res.machines)} machine(s)")
        prepared = session.prepare()
        output.done(f"prepared {len(prepared.machines)} machine(s)")
        summary["machines"] = [str(m) for m in prepared.machines]  # as reached now (root)
        fitted = fit.fit(
            doc,
            testbed=adapter.name,
            capabilities=adapter.capabilities,
            subnets=adapter.reserved_subnets(res),
            gateway=adapter.subnets_gateway(res),
            machines=len(prepared.machines),
            source=path,
        )
        for decision in fitted.decisions:
            output.done(decision)
        if fitted.subnets:
            summary["subnets"] = [f"{n}={c}" for n, c in fitted.subnets.items()]
        if prepared.coordinator is None:
            status = deploy.deploy(
                client,
                path,
                run,
                destroy_after,
                timeout,
                as_json,
                pnodes=prepared.pnodes,
                platform=fitted.platform,
            )
        else:
            summary["coordinator"] = prepared.coordinator
            output.done(f"coordinator {prepared.coordinator} (on the first machine)")
            status = _deploy_remote(
                prepared, path, fitted.platform, run, destroy_after, timeout, as_json
            )
    except BaseException as exc:
        failure = exc
        raise
    finally:
        held = session.reservation is not None and not session.reservation.data.get("deleted")
        wanted = policy is True or (policy is None and (destroyed or failure is not None))
        summary["released"] = False
        if held and wanted:
            try:
                session.release()
                summary["released"] = True
            except PydistemError as exc:
                output.error(exc)
        elif session.reservation is not None and session.reservation.data.get("deleted"):
            summary["released"] = True
        summary["status"] = "failed" if failure is not None else ("ok" if status == 0 else "error")
        summary["seconds"] = round(time.monotonic() - progress.started, 1)
        _summary(summary, held and not summary["released"])
    return status


def _deploy_remote(
    prepared: Prepared,
    path: str,
    platform: Platform,
    run: str | None,
    destroy_after: bool,
    timeout: float,
    as_json: bool,
) -> int:
    """Build the platform through the coordinator the bootstrap started, through an SSH
    tunnel when the machines sit behind a gateway (the testbed seen from outside)."""
    assert prepared.coordinator is not None
    token = prepared.token.reveal() if prepared.token else None
    gateway = prepared.machines[0].gateway if prepared.machines else None
    with contextlib.ExitStack() as stack:
        url = prepared.coordinator
        if gateway is not None:
            where = urlparse(url)
            tunnel = stack.enter_context(
                Tunnel(gateway, where.hostname or "", where.port or 4567, prepared.key)
            )
            output.done(f"coordinator reached through {gateway} ({tunnel.url})")
            url = tunnel.url
        remote = stack.enter_context(Client(url, token=token))
        return deploy.deploy(
            remote,
            path,
            run,
            destroy_after,
            timeout,
            as_json,
            pnodes=[],
            remote=True,
            platform=platform,
        )


def _summary(summary: dict[str, Any], kept: bool) -> None:
    table = Table(title="summary", title_justify="left", show_header=False)
    table.add_column("key")
    table.add_column("value")
    for key in (
        "testbed", "reservation", "machines", "subnets", "coordinator", "status", "released",
        "seconds",
    ):  # fmt: skip
        if key in summary:
            value = summary[key]
            shown = ", ".join(value) if isinstance(value, list) else str(value)
            table.add_row(key, escape(redact(shown)))
    output.err.print(table)
    if kept:
        output.note(f"reservation {summary.get('reservation')} is kept: `distem release` ends it")
