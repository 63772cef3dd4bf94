"""``distem``: subcommands for every API call, plus the Distem 1.x option syntax.

``distem vnode start node-1`` talks the native API through :class:`pydistem.client.Client`;
``distem --start-vnode node-1`` is translated by :mod:`pydistem.cli.distem1` and runs
through the same client. Tables by default, ``--json`` for scripts; errors print
``error: <field>: <reason>`` and exit 2 (bad input) or 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydistem import __version__
from pydistem.cli import bootstrap, deploy, distem1, events, limits, output, probes, testbed
from pydistem.client import Client, ExecResult
from pydistem.errors import PydistemError, ValidationError
from pydistem.model.names import expand_group

COMMANDS = (
    "pnode", "vnetwork", "vroute", "vnode", "viface", "execute", "wait", "deploy", "destroy",
    "clean", "status", "image", "events", "testbeds", "reservations", "release", "vcpu",
    "vmem", "vdisk", "probes", "bootstrap", "quit",
)  # fmt: skip


# --------------------------------------------------------------------------- parser


def _globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--coordinator",
        metavar="HOST[:PORT]",
        default=default,
        help="coordinator address (default $PYDISTEM_URL or 127.0.0.1:4567)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON instead of tables",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distem",
        description="pydistem: build and drive an emulated distributed platform.",
        epilog=distem1.usage(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _globals(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"pydistem {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    _globals(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(parent: Any, name: str, help: str) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=help, description=help, parents=[common])

    # pnode
    pnode = cmd(sub, "pnode", "physical nodes").add_subparsers(dest="action", required=True)
    p = cmd(pnode, "init", "initialise pnodes (hostnames or addresses; idempotent)")
    p.add_argument("targets", nargs="*", default=["localhost"])
    cmd(pnode, "list", "list pnodes")
    cmd(pnode, "show", "show one pnode").add_argument("id")
    p = cmd(pnode, "probe", "can each pnode's INTERFACE carry classic vnetworks (foreign MACs)?")
    p.add_argument("interface")

    # vnetwork
    vnet = cmd(sub, "vnetwork", "virtual networks").add_subparsers(dest="action", required=True)
    p = cmd(vnet, "create", "create a vnetwork")
    p.add_argument("name")
    p.add_argument("address", metavar="CIDR")
    p.add_argument("--type", dest="network_type", choices=("auto", "bridge", "vxlan"))
    p.add_argument("--root-interface", help="pnode interface: classic mode (vxlan: underlay)")
    p.add_argument("--vni", type=int, help="VXLAN network identifier (default: allocated)")
    p.add_argument("--vxlan-port", type=int, help="VXLAN UDP port (default 4789)")
    p.add_argument("--mtu", type=int, help="MTU of the vifaces (vxlan default 1450)")
    p.add_argument("--gateway", metavar="IP", help="default route of its vnodes (onlink outside)")
    cmd(vnet, "list", "list vnetworks")
    cmd(vnet, "show", "show one vnetwork").add_argument("name")
    cmd(vnet, "remove", "remove vnetworks").add_argument("names", nargs="+")

    # vroute
    vroute = cmd(sub, "vroute", "routes between vnetworks").add_subparsers(
        dest="action", required=True
    )
    p = cmd(vroute, "create", "route SOURCE -> DESTINATION through GATEWAY (vnode or address)")
    p.add_argument("source")
    p.add_argument("destination")
    p.add_argument("gateway")
    cmd(vroute, "complete", "create every missing route between joined vnetworks")
    cmd(vroute, "list", "list vroutes")

    # vnode
    vnode = cmd(sub, "vnode", "virtual nodes").add_subparsers(dest="action", required=True)
    p = cmd(vnode, "create", "create vnodes (not started); names may be groups: node-[1-5]")
    p.add_argument("names", nargs="+")
    p.add_argument("--image", help="rootfs image URL (file:///...tar.gz); required for lxc")
    p.add_argument("--runtime", default="lxc", help="lxc (default) or netns")
    p.add_argument("--host", help="pnode (id, hostname or address; default: placed for you)")
    p.add_argument(
        "--viface",
        action="append",
        default=[],
        metavar="NAME:VNETWORK[:ADDRESS]",
        help="add a viface (repeatable), e.g. if0:vnet",
    )
    p.add_argument("--vnetwork", help="shorthand for --viface if0:VNETWORK")
    p.add_argument("--no-shared", action="store_true", help="copy the image instead of overlay")
    p.add_argument("--ssh-key", metavar="PRIVATE_KEY", help="install this key (and its .pub)")
    cmd(vnode, "list", "list vnodes")
    cmd(vnode, "show", "show one vnode").add_argument("name")
    for action, text in (
        ("start", "start vnodes"),
        ("stop", "stop vnodes"),
        ("remove", "remove vnodes"),
        ("freeze", "freeze vnodes"),
        ("unfreeze", "unfreeze vnodes"),
    ):
        p = cmd(vnode, action, f"{text} (names or groups; --all for every vnode)")
        p.add_argument("names", nargs="*")
        p.add_argument("--all", action="store_true")

    # viface
    vif = cmd(sub, "viface", "virtual interfaces").add_subparsers(dest="action", required=True)
    p = cmd(vif, "create", "add a viface to a vnode")
    p.add_argument("vnode")
    p.add_argument("name")
    p.add_argument("--vnetwork", required=True)
    p.add_argument("--address")
    p.add_argument("--default", action="store_true")
    p = cmd(vif, "remove", "remove a viface")
    p.add_argument("vnode")
    p.add_argument("name")
    p = cmd(vif, "traffic", "set bandwidth/latency/loss limits on a viface")
    p.add_argument("vnode")
    p.add_argument("name")
    p.add_argument("--direction", choices=("input", "output", "both"), default="both")
    for key in ("bandwidth", "latency", "jitter", "loss", "duplication", "corruption"):
        p.add_argument(f"--{key}")
    p.add_argument("--reordering")
    p.add_argument("--clear", action="store_true", help="remove the limits of DIRECTION")

    limits.add_parsers(sub, cmd)
    probes.add_parsers(sub, cmd)

    # execute, wait
    p = cmd(sub, "execute", "run a command in vnodes: distem execute VNODE -- CMD ...")
    p.add_argument("vnode", help="a vnode, a group (node-[1-3]) or 'all'")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD")
    p.add_argument("--timeout", type=float)
    p = cmd(sub, "wait", "wait until vnodes are running and answer (all by default)")
    p.add_argument("names", nargs="*")
    p.add_argument("--timeout", type=float, default=600)

    # platform
    p = cmd(sub, "deploy", "deploy a platform file (starts distemd locally if needed)")
    p.add_argument("file")
    p.add_argument("--run", metavar="CMD", help="run CMD in every vnode, then destroy")
    p.add_argument("--destroy-after", action="store_true", help="destroy once shown")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for vnodes")
    rel = p.add_mutually_exclusive_group()
    rel.add_argument(
        "--release",
        dest="release",
        action="store_true",
        default=None,
        help="release the testbed reservation at the end (default: when destroyed)",
    )
    rel.add_argument(
        "--keep", dest="release", action="store_false", help="keep the testbed reservation"
    )
    cmd(sub, "destroy", "remove everything and stop the distemd that deploy started")
    cmd(sub, "clean", "remove every vnode and vnetwork, clean every pnode (= --quit)")
    cmd(sub, "status", "show pnodes, vnetworks and vnodes")
    cmd(sub, "testbeds", "list the installed testbed adapters and their capabilities")
    cmd(sub, "reservations", "list the saved testbed reservations and their state now")
    p = cmd(sub, "release", "end saved testbed reservations (all, or those named)")
    p.add_argument("keys", nargs="*", metavar="RESERVATION", help="e.g. g5k-1894417")

    events.add_parser(sub, cmd)

    # image
    image = cmd(sub, "image", "vnode images").add_subparsers(dest="action", required=True)
    p = cmd(image, "build", "build a rootfs image (busybox: seconds; debian: minutes)")
    p.add_argument("--kind", choices=("busybox", "debian"), default="busybox")
    p.add_argument("-o", "--output", type=Path, help="default /var/lib/pydistem/images/KIND.tar.gz")
    p.add_argument("--if-missing", action="store_true", help="keep an existing image")
    p.add_argument("--suite", default="bookworm", help="Debian suite (debian only)")
    p.add_argument("--mirror", help="Debian mirror (debian only)")
    p.add_argument("--force", action="store_true", help="rebuild a cached Debian image")

    # machines
    bootstrap.add_parsers(sub, cmd)
    return parser


# --------------------------------------------------------------------------- helpers


def names_arg(patterns: Sequence[str], everything: bool = False) -> list[str] | None:
    """Command-line names (groups expanded) -> a list, or None meaning all vnodes."""
    if everything or not patterns or list(patterns) == ["all"]:
        return None
    return [name for pattern in patterns for name in expand_group(pattern, "names")]


def read_ssh_key(path: str) -> dict[str, str]:
    key: dict[str, str] = {}
    try:
        key["private"] = Path(path).read_text()
    except OSError as exc:
        raise ValidationError("ssh_key", f"cannot read {path}: {exc.strerror}") from None
    pub = Path(path + ".pub")
    if pub.exists():
        key["public"] = pub.read_text()
    return key


def show(args: argparse.Namespace, data: Any, table: Any = None) -> None:
    if args.json or table is None:
        output.print_json(data)
    else:
        output.out.print(table(data if isinstance(data, list) else [data]))


# --------------------------------------------------------------------------- native


def run_native(args: argparse.Namespace, client: Client) -> int:
    command, action = args.command, getattr(args, "action", None)
    if command == "pnode":
        if action == "init":
            with output.spinner(f"initialising {', '.join(args.targets)}"):
                data = client.pnode_init(args.targets)
            show(args, data, output.pnodes_table)
        elif action == "list":
            show(args, client.pnodes_info(), output.pnodes_table)
        elif action == "probe":
            with output.spinner(f"probing {args.interface} on every pnode"):
                faults = client.pnodes_probe(args.interface)
            if args.json:
                output.print_json(faults)
            for pnode, fault in sorted(faults.items()):
                if not args.json:
                    output.out.print(f"{pnode}: {'ok' if fault is None else fault}")
            return 0 if not any(faults.values()) else 1
        else:
            show(args, client.pnode_info(args.id), output.pnodes_table)
    elif command == "vnetwork":
        if action == "create":
            keys = ("network_type", "root_interface", "vni", "vxlan_port", "mtu", "gateway")
            opts = {k: getattr(args, k) for k in keys}
            opts = {k: v for k, v in opts.items() if v}
            data = client.vnetwork_create(args.name, args.address, opts)
            show(args, data, output.vnetworks_table)
        elif action == "list":
            show(args, client.vnetworks_info(), output.vnetworks_table)
        elif action == "show":
            show(args, client.vnetwork_info(args.name), output.vnetworks_table)
        else:
            for name in args.names:
                client.vnetwork_remove(name)
                output.done(f"vnetwork {name} removed")
    elif command == "vroute":
        if action == "create":
            data = client.vroute_create(args.source, args.destination, args.gateway)
            show(args, data, output.vroutes_table)
        elif action == "complete":
            show(args, client.vroute_complete(), output.vroutes_table)
        else:
            show(args, client.vroutes_info(), output.vroutes_table)
    elif command == "vnode":
        return _vnode(args, client, action)
    elif command == "viface":
        return _viface(args, client, action)
    elif command in ("vcpu", "vmem", "vdisk"):
        return limits.run(args, client)
    elif command == "probes":
        return probes.run(args, client)
    elif command == "execute":
        return _execute(args, client)
    elif command == "wait":
        names = names_arg(args.names)
        with output.spinner(
            "waiting for vnodes", poll=lambda: output.count_status(client.vnodes_info(), names)
        ):
            ready = client.wait_vnodes(timeout=args.timeout, vnodes=names)
        if args.json:
            output.print_json({"ready": ready, "pending": client.pending_vnodes})
        elif ready:
            output.done("every vnode is running and answers")
        else:
            return output.error(PydistemError(f"not ready: {', '.join(client.pending_vnodes)}"))
        return 0 if ready else 1
    elif command == "deploy":
        return testbed.deploy_file(
            client, args.file, args.run, args.destroy_after, args.timeout, args.json, args.release
        )
    elif command == "destroy":
        return deploy.destroy(client)
    elif command == "clean":
        if not client.health():
            return clean_local_journal(args.json)
        with output.spinner("removing every vnode and vnetwork"):
            data = client.quit()
        if args.json:
            output.print_json(data)
        unclean = quit_failures(data)
        for pnode, reason in unclean.items():
            output.error(
                PydistemError(
                    f"pnode {pnode} was not cleaned: {reason} (its journal keeps what is "
                    "left: run `distem clean` on that host)"
                )
            )
        if unclean:
            return 1
        if not args.json:
            output.done("every vnode and vnetwork removed, pnodes cleaned")
    elif command == "status":
        if not client.health():
            return output.error(PydistemError(f"no coordinator answers at {client.url}"))
        data = client.platform_info()
        if args.json:
            output.print_json(data)
        else:
            output.out.print(output.pnodes_table(data.get("pnodes") or []))
            output.out.print(output.vnetworks_table(data.get("vnetworks") or []))
            output.out.print(output.vnodes_table(data.get("vnodes") or []))
    elif command == "events":
        return events.run(args, client)
    elif command == "image":
        from pydistem.cli.image import build_image

        path = build_image(
            args.kind, args.output, args.if_missing, args.suite, args.mirror, args.force
        )
        if args.json:
            output.print_json({"path": str(path), "url": f"file://{path}"})
    return 0


def _vnode(args: argparse.Namespace, client: Client, action: str) -> int:
    if action == "create":
        vifaces = [f"if0:{args.vnetwork}"] if args.vnetwork else []
        desc: dict[str, Any] = {"runtime": args.runtime, "vifaces": []}
        for spec in [*vifaces, *args.viface]:
            parts = spec.split(":")
            if len(parts) not in (2, 3) or not all(parts):
                raise ValidationError("viface", f"{spec!r}: write NAME:VNETWORK[:ADDRESS]")
            vif = {"name": parts[0], "vnetwork": parts[1]}
            if len(parts) == 3:
                vif["address"] = parts[2]
            desc["vifaces"].append(vif)
        if args.image:
            desc["vfilesystem"] = {"image": args.image, "shared": not args.no_shared}
        if args.host:
            desc["host"] = args.host  # the coordinator resolves names and local aliases
        ssh_key = read_ssh_key(args.ssh_key) if args.ssh_key else None
        names = names_arg(args.names) or []
        data = client.vnodes_create(names, desc, ssh_key)
        show(args, data, output.vnodes_table)
    elif action == "list":
        show(args, client.vnodes_info(), output.vnodes_table)
    elif action == "show":
        show(args, client.vnode_info(args.name), output.vnodes_table)
    else:
        names = names_arg(args.names, args.all)
        if names is None and not args.all and args.names != ["all"]:
            raise ValidationError("names", f"name vnodes to {action}, or give --all")
        target = "status" if action != "remove" else None
        expect = {"start": "RUNNING", "stop": "DOWN", "freeze": "FROZEN", "unfreeze": "RUNNING"}
        poll = (
            (lambda: output.count_status(client.vnodes_info(), names, expect[action]))
            if target
            else None
        )
        label = f"{action} {len(names) if names is not None else 'all'} vnode(s)"
        with output.spinner(label, poll=poll):
            data = getattr(client, f"vnodes_{action}")(names)
        if action == "remove":
            if args.json:
                output.print_json(data)
            else:
                output.done(f"removed {len(names) if names is not None else 'every'} vnode(s)")
        else:
            show(args, data, output.vnodes_table)
    return 0


def _viface(args: argparse.Namespace, client: Client, action: str) -> int:
    if action == "create":
        desc = {"vnetwork": args.vnetwork, "default": args.default}
        if args.address:
            desc["address"] = args.address
        data = client.viface_create(args.vnode, args.name, desc)
        output.print_json(data) if args.json else output.done(
            f"viface {args.vnode}.{args.name} on {data.get('vnetwork')}: {data.get('address')}"
        )
    elif action == "remove":
        client.viface_remove(args.vnode, args.name)
        output.done(f"viface {args.vnode}.{args.name} removed")
    else:
        keys = ("bandwidth", "latency", "jitter", "loss", "duplication", "corruption", "reordering")
        limits = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
        if not limits and not args.clear:
            raise ValidationError("traffic", "give at least one limit (--bandwidth 10mbit ...)")
        value = None if args.clear else limits
        if args.direction == "input":
            data = client.vinput_update(args.vnode, args.name, value)
        elif args.direction == "output":
            data = client.voutput_update(args.vnode, args.name, value)
        else:
            data = client.viface_traffic(args.vnode, args.name, value, value)
        output.print_json(data) if args.json else output.done(
            f"traffic of {args.vnode}.{args.name} ({args.direction}) set"
        )
    return 0


def _execute(args: argparse.Namespace, client: Client) -> int:
    argv = list(args.cmd)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise ValidationError("command", "give the command after --: distem execute n1 -- hostname")
    command: str | list[str] = argv[0] if len(argv) == 1 else argv
    names = names_arg([args.vnode])
    if names is not None and len(names) == 1 and "[" not in args.vnode:
        res = client.vnode_execute(names[0], command, args.timeout)
        if args.json:
            output.print_json(res.__dict__)
        else:
            sys.stdout.write(res.stdout)
            sys.stderr.write(res.stderr)
        return res.exit_code
    with output.spinner(f"running in {len(names) if names else 'every'} vnode(s)"):
        results: dict[str, ExecResult] = client.vnodes_execute(names, command)
    if args.json:
        output.print_json({n: r.__dict__ for n, r in results.items()})
    else:
        output.out.print(output.exec_results_table(results))
    return max((r.exit_code for r in results.values()), default=0)


# --------------------------------------------------------------------------- Distem 1.x


def _materialise(value: Any) -> Any:
    """Replace FileText markers by file contents (stdin for None)."""
    if isinstance(value, distem1.FileText):
        if value.path is None:
            return sys.stdin.read()
        try:
            return Path(value.path).read_text()
        except OSError as exc:
            raise ValidationError("file", f"cannot read {value.path}: {exc.strerror}") from None
    if isinstance(value, dict):
        return {k: _materialise(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_materialise(v) for v in value)
    return value


def run_distem1(plan: distem1.Plan, client: Client) -> int:
    """Run a translated Distem 1.x command line; returns the exit status."""
    import json

    for text in plan.notes:
        output.note(text)
    status = 0
    for call in plan.calls:
        args = _materialise(call.args)
        if call.method == "platform_deploy":
            try:
                args = (json.loads(args[0]),)
            except ValueError as exc:
                raise ValidationError("configfile", f"not JSON: {exc}") from None
        result = getattr(client, call.method)(*args)
        if call.show == "lines":
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            status = status or result.exit_code
        elif call.show == "pp":
            print(distem1.ruby_inspect(result))
        elif call.show == "save":
            text = json.dumps(result, indent=2)
            if call.target:
                Path(call.target).write_text(text + "\n")
            else:
                print(text)
    return status


def is_distem1(argv: Sequence[str]) -> bool:
    """True when argv uses the Distem 1.x options rather than a subcommand."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--json":
            i += 1
        elif token == "--coordinator":
            if i + 1 < len(argv) and "=" in argv[i + 1]:
                return True
            i += 2
        elif token.startswith("--coordinator="):
            if "=" in token.split("=", 1)[1]:
                return True
            i += 1
        else:
            return token.startswith("-") and token not in ("-h", "--help", "--version")
    return False


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Distem 1.x options sent over Distem's own wire protocol (docs/coming-from-distem.md)
    wire = "--distem-wire" in argv or os.environ.get("PYDISTEM_WIRE") == "distem"
    argv = [a for a in argv if a != "--distem-wire"]
    try:
        if is_distem1(argv):
            try:
                plan = distem1.translate(argv)
            except distem1.Distem1UsageError as exc:
                if exc.message:
                    output.err.print(exc.message, markup=False, highlight=False)
                if exc.usage:
                    print(distem1.usage())
                return exc.exit_code
            if wire:
                from pydistem.cli.distem_wire import DistemWireClient

                with DistemWireClient(plan.coordinator) as wire_client:
                    return run_distem1(plan, wire_client)  # type: ignore[arg-type]
            with Client(coordinator=plan.coordinator) as client:
                return run_distem1(plan, client)
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 1
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 1
        if args.command == "testbeds":
            return testbed.list_testbeds(args.json)
        if args.command == "release":
            return testbed.release(args.keys, args.json)
        if args.command == "bootstrap":
            return bootstrap.run_bootstrap(args)
        if args.command == "quit":
            status = bootstrap.run_quit(args)
            if status is not None:
                return status
            args.command = "clean"  # nothing bootstrapped: quit = clean the coordinator
        if args.command == "reservations":
            return testbed.reservations(args.json)
        coordinator = args.coordinator
        if coordinator and "=" in coordinator:
            coordinator = distem1.coordinator_spec(coordinator)
        with Client(coordinator=coordinator) as client:
            return run_native(args, client)
    except PydistemError as exc:
        return output.error(exc)
    except KeyboardInterrupt:
        output.err.print("[red]interrupted[/]")
        return 130


def quit_failures(report: Any) -> dict[str, str]:
    """pnode -> why it was not (fully) cleaned, from the report of ``quit``."""
    report = report or {}
    report = report.get("removed", report)  # POST /quit answers {"removed": report}
    out = {}
    for pnode, rep in (report.get("pnodes") or {}).items():
        if not isinstance(rep, dict):
            continue
        if rep.get("error"):
            out[pnode] = str(rep["error"])
        elif rep.get("failed"):
            out[pnode] = "; ".join(f"{k}: {v}" for k, v in sorted(rep["failed"].items()))
    return out


def clean_local_journal(as_json: bool) -> int:
    """``distem clean`` with no coordinator (e.g. after a crash): remove every kernel
    object the local agent journaled, straight from its journal on disk."""
    import os
    from dataclasses import asdict
    from pathlib import Path

    from pydistem.agent.service import Agent

    state = Path(os.environ.get("PYDISTEM_STATE_DIR", "/var/lib/pydistem")) / "agent"
    if not (state / "journal.jsonl").exists():
        output.done(f"no coordinator answers and nothing is journaled in {state}")
        return 0
    agent = Agent(state)
    try:
        with output.spinner(f"no coordinator: cleaning what {state} journaled"):
            report = agent.clean()
    finally:
        agent.close()
    if as_json:
        output.print_json(asdict(report))
    else:
        output.done(f"removed {len(report.removed)} kernel objects journaled in {state}")
    for label, reason in report.failed.items():
        output.error(PydistemError(f"could not remove {label}: {reason}"))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
