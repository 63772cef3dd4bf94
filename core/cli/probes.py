"""``distem probes``: sample every pnode's resources periodically (Distem's probes).

``distem probes launch --probe bw,frequency=2,interface=eth0 --probe loadavg``,
``distem probes stop``, ``distem probes restart``, ``distem probes show``,
``distem probes delete``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pydistem.cli import output
from pydistem.client import Client
from pydistem.errors import ValidationError

ACTIONS = ("launch", "stop", "restart", "delete", "show")


def add_parsers(sub: Any, cmd: Callable[[Any, str, str], argparse.ArgumentParser]) -> None:
    probes = cmd(sub, "probes", "sample pnode resources periodically (bw, loadavg, cpu, memory)")
    acts = probes.add_subparsers(dest="action", required=True)
    for action in ACTIONS:
        p = cmd(acts, action, f"{action} the probes of every pnode")
        if action == "launch":
            p.add_argument(
                "--probe",
                action="append",
                required=True,
                metavar="TYPE[,frequency=F][,interface=I][,name=N]",
                help="a probe: bw, loadavg, cpu or memory (repeat for several)",
            )


def parse_probe(text: str) -> dict[str, Any]:
    """``bw,frequency=2,interface=eth0`` -> ``{"type": "bw", "frequency": "2", ...}``."""
    kind, *params = [part.strip() for part in text.split(",")]
    out: dict[str, Any] = {"type": kind}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep or key not in ("frequency", "interface", "name"):
            raise ValidationError("probe", f"{param!r}: write frequency=F, interface=I or name=N")
        out[key] = value
    return out


def run(args: argparse.Namespace, client: Client) -> int:
    action = args.action
    if action == "launch":
        started = client.pnodes_launch_probes([parse_probe(p) for p in args.probe])
        if args.json:
            output.print_json(started)
        else:
            output.done("probes started: " + ", ".join(p["name"] for p in started))
    elif action == "show":
        output.print_json(client.pnodes_get_probes_data())
    else:
        if action == "delete":
            client.pnodes_delete_probes()
        elif action == "stop":
            client.pnodes_stop_probes()
        else:
            client.pnodes_restart_probes()
        output.done(f"probes: {action}{'ped' if action == 'stop' else 'd'}")
    return 0
