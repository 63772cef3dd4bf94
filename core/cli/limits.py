"""``distem vcpu``, ``distem vmem`` and ``distem vdisk``: CPU, memory and disk limits of
a vnode, live.

``distem vcpu create node-1 --cores 2 --frequency 0.5`` (or ``--frequency 1200MHz``),
``distem vcpu update node-1 --frequency 0.25``, ``distem vcpu show node-1``,
``distem vcpu remove node-1``; ``distem vmem create node-1 --limit 512MiB --swap 0``...;
``distem vdisk set node-1 --read 10MiB --write 5MiB``, ``distem vdisk remove node-1``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pydistem.cli import output
from pydistem.client import Client
from pydistem.errors import ValidationError

ACTIONS = ("create", "update", "remove", "show")


def add_parsers(sub: Any, cmd: Callable[[Any, str, str], argparse.ArgumentParser]) -> None:
    vcpu = cmd(sub, "vcpu", "CPU limits of vnodes (cores, speed)")
    acts = vcpu.add_subparsers(dest="action", required=True)
    for action in ACTIONS:
        p = cmd(acts, action, f"{action} the CPU limit of a vnode")
        p.add_argument("vnode")
        if action in ("create", "update"):
            p.add_argument("--cores", type=int, help="number of cores (default: all, unpinned)")
            p.add_argument(
                "--frequency", help="fraction of the core speed in (0, 1], or e.g. 1200MHz"
            )
            p.add_argument("--pcores", metavar="0,1", help="pin to these pnode cores")
    vmem = cmd(sub, "vmem", "memory limits of vnodes (memory, swap)")
    acts = vmem.add_subparsers(dest="action", required=True)
    for action in ACTIONS:
        p = cmd(acts, action, f"{action} the memory limit of a vnode")
        p.add_argument("vnode")
        if action in ("create", "update"):
            p.add_argument("--limit", help="memory, e.g. 512MiB or 1g (a bare number is MiB)")
            p.add_argument("--swap", help="swap on top of the limit (0: none)")
            p.add_argument("--soft", help="soft limit: reclaimed down to it first, never killed")
    vdisk = cmd(sub, "vdisk", "disk I/O limits of vnodes (bytes and operations per second)")
    acts = vdisk.add_subparsers(dest="action", required=True)
    for action in ("set", "remove", "show"):
        p = cmd(acts, action, f"{action} the disk throttling of a vnode")
        p.add_argument("vnode")
        if action == "set":
            p.add_argument("--read", help="read bytes per second, e.g. 10MiB")
            p.add_argument("--write", help="write bytes per second, e.g. 5MiB")
            p.add_argument("--read-iops", type=int, help="read operations per second")
            p.add_argument("--write-iops", type=int, help="write operations per second")
            p.add_argument(
                "--device", help="block device, e.g. /dev/vda (default: the rootfs's disk)"
            )


def _cpu_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if args.cores is not None:
        fields["cores"] = args.cores
    if args.frequency is not None:
        fields["frequency"] = args.frequency
    if args.pcores:
        try:
            fields["pcores"] = [int(c) for c in args.pcores.split(",")]
        except ValueError:
            raise ValidationError(
                "pcores", f"{args.pcores!r}: write core numbers like 0,1"
            ) from None
    if not fields:
        raise ValidationError("cpu", "give --cores, --frequency or --pcores")
    return fields


def _run_vdisk(args: argparse.Namespace, client: Client) -> int:
    action, vnode = args.action, args.vnode
    data: Any
    if action == "show":
        data = client.vnode_limits(vnode)
    elif action == "remove":
        data = client.vdisk_remove(vnode)
    else:
        fields = {k: getattr(args, k) for k in ("read", "write", "read_iops", "write_iops")}
        if all(v is None for v in fields.values()):
            raise ValidationError("disk", "give --read, --write, --read-iops or --write-iops")
        data = client.vdisk_set(vnode, device=args.device, **fields)
    if args.json or action == "show":
        output.print_json(data)
    else:
        output.done(f"disk throttling of {vnode}: {'set' if action == 'set' else 'removed'}")
    return 0


def run(args: argparse.Namespace, client: Client) -> int:
    action, vnode = args.action, args.vnode
    if args.command == "vdisk":
        return _run_vdisk(args, client)
    if args.command == "vcpu":
        if action == "show":
            data = client.vnode_limits(vnode)
        elif action == "remove":
            data = client.vcpu_remove(vnode)
        elif action == "create":
            data = client._request("POST", f"/vnodes/{vnode}/cpu", _cpu_fields(args), wait=60)
        else:
            data = client.vcpu_set(vnode, **_cpu_fields(args))
    else:
        fields = {k: getattr(args, k, None) for k in ("limit", "swap", "soft")}
        fields = {k: v for k, v in fields.items() if v is not None}
        if action == "show":
            data = client.vnode_limits(vnode)
        elif action == "remove":
            data = client.vmem_remove(vnode)
        elif not fields:
            raise ValidationError("memory", "give --limit, --swap or --soft")
        elif action == "create":
            data = client._request("POST", f"/vnodes/{vnode}/memory", fields, wait=60)
        else:
            data = client.vmem_update(vnode, fields)
    if args.json or action == "show":
        output.print_json(data)
    else:
        what = "CPU" if args.command == "vcpu" else "memory"
        output.done(f"{what} limit of {vnode}: {action}d" if action != "show" else "")
    return 0
