"""``distem events``: schedule timed events and churn, play them, read the log.

``add FILE`` (a YAML/JSON event list, or a platform file's ``events:``), ``trace FILE``
(Distem's ``<seconds> <value>`` lines for one resource), ``churn``, ``list``, ``start``,
``stop``, ``clear``, ``remove ID``, ``log``. See docs/events.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from rich.markup import escape
from rich.table import Table

from pydistem.cli import output
from pydistem.client import Client
from pydistem.errors import ValidationError
from pydistem.events.distem import EVENT_TYPES

Cmd = Callable[[Any, str, str], argparse.ArgumentParser]


def add_parser(sub: Any, cmd: Cmd) -> None:
    ev = cmd(sub, "events", "timed events and churn").add_subparsers(dest="action", required=True)
    p = cmd(
        ev, "add", "schedule the events of a YAML/JSON file (a list, or a mapping with events:)"
    )
    p.add_argument("file")
    p = cmd(ev, "trace", "schedule a Distem trace file (lines '<seconds> <value>') on one resource")
    p.add_argument("file")
    p.add_argument("--vnode", required=True)
    p.add_argument("--viface", help="the viface (network event types)")
    p.add_argument("--direction", choices=("input", "output"), help="default: both")
    p.add_argument("--type", dest="event_type", required=True, choices=EVENT_TYPES)
    p = cmd(ev, "churn", "schedule random failures/recoveries of vnodes (reproducible by seed)")
    p.add_argument("vnodes", nargs="+", help="names or groups: node-[1-5]")
    p.add_argument("--rate", required=True, help="failures per second, per vnode")
    p.add_argument("--downtime", required=True, help="mean time down, e.g. 5s")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--until", required=True, help="no failure after this time, e.g. 10min")
    p.add_argument("--start", default="0", help="no failure before this time (default 0)")
    p.add_argument("--mode", choices=("stop", "freeze"), default="stop")
    cmd(ev, "list", "show the schedule and whether it plays")
    cmd(ev, "start", "play the schedule from time 0 (a new run)")
    cmd(ev, "stop", "stop playing (the schedule stays)")
    cmd(ev, "clear", "stop and forget every event")
    cmd(ev, "remove", "forget one event").add_argument("id", type=int)
    p = cmd(ev, "log", "what was applied when: planned vs applied time, errors")
    p.add_argument("--run", type=int, help="one run (default: all)")
    p.add_argument("--since", type=int, default=0, help="entries after this seq")


def read_items(path: str) -> list[Any]:
    """The event list in a YAML/JSON file: a list, or the ``events`` of a mapping."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ValidationError("file", f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValidationError("file", f"{path} is not valid YAML/JSON: {exc}") from None
    if isinstance(doc, dict):
        doc = doc.get("events")
    if not isinstance(doc, list):
        raise ValidationError("file", f"{path}: an event list, or a mapping with events:")
    return doc


def events_table(events: list[dict[str, Any]]) -> Table:
    t = Table("id", "at (s)", "action", "target", "change", "source")
    for e in events:
        target = e["vnode"] + (f".{e['viface']}" if e.get("viface") else "")
        change = ""
        if e.get("traffic"):
            change = f"{e.get('direction', 'both')}: " + ", ".join(
                f"{k}={v}" for k, v in e["traffic"].items()
            )
        elif e.get("cpu"):
            change = ", ".join(f"{k}={v}" for k, v in e["cpu"].items())
        t.add_row(
            str(e.get("id", "")),
            f"{e['at']:.3f}",
            e["action"],
            target,
            change,
            e.get("source") or "",
        )
    return t


def log_table(entries: list[dict[str, Any]]) -> Table:
    t = Table("run", "id", "planned", "applied", "delay", "action", "target", "result")
    for e in entries:
        result = "[green]ok[/]" if e["ok"] else f"[red]{escape(e.get('error') or '')}[/]"
        t.add_row(
            str(e["run"]), str(e.get("event") or ""), f"{e['planned']:.3f}", f"{e['applied']:.3f}",
            f"{e['delay'] * 1000:+.1f} ms", e["action"], e["target"], result,
        )  # fmt: skip
    return t


def _state(info: dict[str, Any]) -> str:
    if info.get("running"):
        return f"run {info['run']} playing, t={info.get('elapsed') or 0:.1f}s"
    return f"not playing ({info.get('run') or 0} run(s) so far)"


def run(args: argparse.Namespace, client: Client) -> int:
    action = args.action
    if action in ("add", "trace", "churn"):
        if action == "add":
            added = client.events_add(read_items(args.file))
        elif action == "trace":
            resource: dict[str, Any] = {"type": "vnode", "vnodename": args.vnode}
            if args.event_type == "power":
                resource["type"] = "vcpu"
            elif args.event_type != "churn":
                if not args.viface:
                    raise ValidationError("viface", f"a {args.event_type} trace names --viface")
                resource.update(type="viface", vifacename=args.viface)
                if args.direction:
                    resource["viface_direction"] = args.direction
            added = client.event_trace_file_add(resource, args.event_type, args.file)
        else:
            added = client.churn_add(
                args.vnodes, args.rate, args.downtime, args.seed, args.until, args.start, args.mode
            )
        if args.json:
            output.print_json(added)
        else:
            output.out.print(events_table(added))
            output.done(f"{len(added)} event(s) scheduled")
    elif action == "list":
        info = client.events_info()
        if args.json:
            output.print_json(info)
        else:
            output.out.print(events_table(info["events"]))
            for g in info["generators"]:
                what = f"{g['event_type']} on {g['resource']}"
                output.note(f"generator {g['source']}: {what} (seed {g['seed']})")
            output.note(_state(info))
    elif action in ("start", "stop"):
        info = client.events_start() if action == "start" else client.events_stop()
        output.print_json(info) if args.json else output.done(_state(info))
    elif action == "clear":
        n = client.events_clear()
        output.print_json({"removed": n}) if args.json else output.done(f"{n} event(s) forgotten")
    elif action == "remove":
        data = client.event_remove(args.id)
        output.print_json(data) if args.json else output.done(f"event {args.id} forgotten")
    else:
        entries = client.events_log(args.run, args.since)
        if args.json:
            output.print_json(entries)
        else:
            output.out.print(log_table(entries))
    return 0
