"""The Distem 1.x option syntax (``distem --create-vnode vnode=n1,rootfs=...``), translated.

:func:`translate` is pure: argv in, a :class:`Plan` out (the coordinator to talk to and
the list of client calls in command-line order). ``main.py`` runs the plan through
:class:`pydistem.client.Client`. Parsing follows Ruby's OptionParser as Distem used it:
``key=value`` sub-options split on commas, unambiguous abbreviations (``-q`` is
``--quit``), ``--opt=value``, options executed in the order given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydistem.errors import PydistemError

Show = Literal["pp", "lines", "none", "save"]


class Distem1UsageError(PydistemError):
    """The Distem 1.x command line is wrong (unknown option, missing sub-option...).

    ``usage`` asks the caller to print the usage text too; ``exit_code`` is what
    Distem exits with (1, or 0 for leftover arguments).
    """

    code = "usage"
    status = 400

    def __init__(self, message: str, usage: bool = False, exit_code: int = 1) -> None:
        super().__init__(message)
        self.usage = usage
        self.exit_code = exit_code


@dataclass(frozen=True)
class FileText:
    """An argument that is the content of a file, read when the plan runs (None = stdin)."""

    path: str | None


@dataclass(frozen=True)
class Call:
    """One client call: ``getattr(client, method)(*args)``, its result shown as ``show``.

    ``show``: ``pp`` prints the result Ruby-``pp`` style (what Distem printed), ``lines``
    prints a command's stdout and exits with its code, ``save`` writes pretty JSON to
    ``target`` (stdout when None), ``none`` prints nothing.
    """

    method: str
    args: tuple[Any, ...] = ()
    show: Show = "pp"
    target: str | None = None


@dataclass
class Plan:
    coordinator: str | None = None  # host[:port]; None = the default
    calls: list[Call] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# option name -> (argument kind, mandatory sub-options, optional sub-options, help)
# kinds: flag (no argument), arg (one), optarg (optional), subopts (k=v,k=v), optsubopts
_OPTIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    "help": ("flag", (), (), "show this help"),
    "coordinator": ("subopts", ("host",), ("port",), "host=HOST[,port=PORT]  coordinator"),
    "init-pnode": ("arg", (), (), "P1[,P2,...]  initialise pnodes"),
    "max-vifaces": ("arg", (), (), "NB  (with --init-pnode; accepted, no limit in pydistem)"),
    "quit": ("optarg", (), (), "quit: remove every vnode and vnetwork, clean every pnode"),
    "create-vnode": (
        "subopts",
        ("vnode", "rootfs"),
        ("pnode", "sshprivkey", "sshpubkey"),
        "vnode=V,rootfs=FILE[,pnode=P,sshprivkey=F,sshpubkey=F]",
    ),
    "start-vnode": ("arg", (), (), "V  start a vnode"),
    "stop-vnode": ("arg", (), (), "V  stop a vnode"),
    "remove-vnode": ("optarg", (), (), "[V]  remove a vnode (all without V)"),
    "copy-to": ("subopts", ("vnode", "src", "dest"), ("user",), "(not supported)"),
    "copy-from": ("subopts", ("vnode", "src", "dest"), ("user",), "(not supported)"),
    "get-image": (
        "subopts",
        ("vnode",),
        ("dest",),
        "vnode=V[,dest=DIR]  the running vnode's root filesystem as DIR/V.tgz",
    ),
    "shell": ("arg", (), (), "(not supported; use `distem execute V -- sh`)"),
    "execute": ("subopts", ("vnode", "command"), ("user",), "vnode=V,command=CMD"),
    "create-vnetwork": ("subopts", ("vnetwork", "address"), (), "vnetwork=NET,address=CIDR"),
    "remove-vnetwork": ("optarg", (), (), "[NET]  remove a vnetwork (all without NET)"),
    "create-viface": (
        "subopts",
        ("vnode", "iface"),
        ("vnetwork", "address", "default"),
        "vnode=V,iface=I[,vnetwork=NET,address=ADDR,default=true]",
    ),
    "remove-viface": ("subopts", ("vnode", "iface"), (), "vnode=V,iface=I"),
    "create-vroute": (
        "subopts",
        ("vnetsrc", "vnetdest", "gateway"),
        (),
        "vnetsrc=A,vnetdest=B,gateway=IP|VNODE  route A -> B",
    ),
    "complete-vroutes": ("flag", (), (), "create every route between joined vnetworks"),
    "config-viface": (
        "subopts",
        ("vnode", "iface"),
        ("bw", "latency", "loss", "corruption", "duplication", "reordering", "direction"),
        "vnode=V,iface=I[,bw=..,latency=..,loss=P%,..,direction=INPUT|OUTPUT]",
    ),
    "set-vmem": ("subopts", ("vnode",), ("mem", "swap"), "vnode=V,mem=MB[,swap=MB]"),
    "set-vcpu": (
        "subopts",
        ("vnode", "corenb", "cpu_speed"),
        ("unit",),
        "vnode=V,corenb=N,cpu_speed=VAL|unlimited[,unit=mhz|ratio]",
    ),
    "config-vcpu": (
        "subopts",
        ("vnode", "cpu_speed"),
        ("unit",),
        "vnode=V,cpu_speed=VAL|unlimited[,unit=mhz|ratio]",
    ),
    "get-pnode-info": ("optarg", (), (), "[P]  pnode description(s)"),
    "get-vnode-info": ("optarg", (), (), "[V]  vnode description(s)"),
    "get-vnetwork-info": ("optarg", (), (), "[NET]  vnetwork description(s)"),
    "set-global-etchosts": ("flag", (), (), "(not supported)"),
    "set-global-arptable": ("flag", (), (), "(not supported)"),
    "save-config": ("optsubopts", (), ("configfile",), "[configfile=FILE]  platform as JSON"),
    "load-config": (
        "subopts",
        ("format",),
        ("configfile", "rootfs"),
        "format=JSON[,configfile=FILE]  deploy a platform document",
    ),
}

_UNSUPPORTED = {
    "copy-to": "copy files with `distem execute` or through the vnode's shared rootfs",
    "copy-from": "copy files with `distem execute` or through the vnode's shared rootfs",
    "shell": "use `distem execute V -- sh -c '...'`",
    "set-global-etchosts": "not in pydistem's native API",
    "set-global-arptable": "not in pydistem's native API",
}

#: Long options, for recognising the syntax in ``main``.
LONG_OPTIONS = tuple(_OPTIONS)


def usage() -> str:
    """The Distem 1.x part of ``distem -h``."""
    lines = ["Distem 1.x syntax: distem --coordinator [host=HOSTNAME,[port=PORT]] option ..."]
    for name, (_kind, _req, _opt, text) in _OPTIONS.items():
        short = "-q, " if name == "quit" else "-h, " if name == "help" else "    "
        lines.append(f"  {short}--{name:<20} {text}")
    return "\n".join(lines)


def sub_options(text: str) -> dict[str, str]:
    """``a=1,b=x=y`` -> ``{"a": "1", "b": "x=y"}`` (Distem's split: no comma in values)."""
    out: dict[str, str] = {}
    for part in text.split(","):
        m = re.match(r"(.*?)=(.*)", part)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def coordinator_spec(text: str) -> str:
    """``host=H[,port=P]`` (or already ``H[:P]``) -> ``H[:P]``."""
    if "=" not in text:
        return text
    opts = _check("coordinator", sub_options(text))
    return f"{opts['host']}:{opts['port']}" if opts.get("port") else opts["host"]


def _resolve(token: str) -> str:
    """An option as typed (``--start-vnode``, ``--start``, ``-q``) -> its long name."""
    if token.startswith("--"):
        name = token[2:]
        if name in _OPTIONS:
            return name
        matches = [o for o in _OPTIONS if o.startswith(name)]
    else:
        letter = token[1:2]
        if letter == "h":
            return "help"
        matches = [o for o in _OPTIONS if o.startswith(letter)]
    if len(matches) == 1 and token not in ("-", "--"):
        return matches[0]
    if len(matches) > 1:
        raise Distem1UsageError(f"ambiguous option: {token}")
    raise Distem1UsageError(f"invalid option: {token}")


def _check(option: str, opts: dict[str, str]) -> dict[str, str]:
    _kind, required, optional, _ = _OPTIONS[option]
    for key in opts:
        if key not in required and key not in optional:
            raise Distem1UsageError(f"The sub-option {key} is not supported with --{option}")
    for key in required:
        if not opts.get(key):
            raise Distem1UsageError(f"The mandatory sub-option {key} must be set with --{option}")
    return opts


def _traffic(opts: dict[str, str]) -> dict[str, str]:
    """config-viface sub-options -> a Traffic dict; ``unlimited``/``none`` mean no limit."""
    keys = {
        "bw": "bandwidth",
        "latency": "latency",
        "loss": "loss",
        "corruption": "corruption",
        "duplication": "duplication",
        "reordering": "reordering",
    }
    out: dict[str, str] = {}
    for sub, key in keys.items():
        value = opts.get(sub)
        if value is not None and value.lower() not in ("unlimited", "none", ""):
            out[key] = value
    return out


def translate(argv: list[str]) -> Plan:
    """Distem 1.x argv (without the program name) -> the Plan to run.

    Raises Distem1UsageError as Distem's CLI failed: invalid/ambiguous option, missing or
    unknown sub-option, an option pydistem does not support, no option at all.
    """
    plan = Plan()
    leftover: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            leftover.extend(argv[i:])
            break
        if not token.startswith("-") or token == "-":
            leftover.append(token)
            continue
        inline: str | None = None
        if token.startswith("--") and "=" in token:
            token, inline = token.split("=", 1)
        elif not token.startswith("--") and len(token) > 2:
            token, inline = token[:2], token[2:]
        name = _resolve(token)
        kind = _OPTIONS[name][0]
        value: str | None = inline
        if kind in ("arg", "subopts") and value is None:
            if i >= len(argv):
                raise Distem1UsageError(f"missing argument: --{name}")
            value = argv[i]
            i += 1
        elif kind in ("optarg", "optsubopts") and value is None:
            if i < len(argv) and not argv[i].startswith("-"):
                value = argv[i]
                i += 1
        elif kind == "flag" and value is not None:
            raise Distem1UsageError(f"needless argument: --{name}={value}")
        if name == "help":
            raise Distem1UsageError("", usage=True, exit_code=0)
        if name in _UNSUPPORTED:
            raise Distem1UsageError(f"--{name} is not supported by pydistem: {_UNSUPPORTED[name]}")
        _add(plan, name, value)
    if leftover:
        raise Distem1UsageError(
            f"unexpected argument(s): {' '.join(leftover)}", usage=True, exit_code=0
        )
    if not plan.calls and not plan.notes:
        raise Distem1UsageError("Choose at least one option", usage=True)
    return plan


def _add(plan: Plan, name: str, value: str | None) -> None:
    """Append what option ``name`` (with its raw ``value``) does to ``plan``."""
    subopts = _check(name, sub_options(value)) if _OPTIONS[name][0] == "subopts" else {}
    calls = plan.calls
    if name == "coordinator":
        plan.coordinator = coordinator_spec(value or "")
    elif name == "init-pnode":
        calls.append(Call("pnode_init", ([p for p in (value or "").split(",") if p],)))
    elif name == "max-vifaces":
        plan.notes.append("--max-vifaces ignored: pydistem sets no limit on vifaces")
    elif name == "quit":
        if value:
            raise Distem1UsageError(
                "--quit PNODE is not supported by pydistem: use --quit alone (cleans every pnode)"
            )
        calls.append(Call("quit", show="none"))
    elif name == "create-vnode":
        desc: dict[str, Any] = {"vfilesystem": {"image": subopts["rootfs"], "shared": False}}
        if subopts.get("pnode"):
            desc["host"] = subopts["pnode"]
        ssh_key = {
            role: FileText(subopts[key])
            for role, key in (("private", "sshprivkey"), ("public", "sshpubkey"))
            if subopts.get(key)
        }
        calls.append(Call("vnode_create", (subopts["vnode"], desc, ssh_key or None)))
    elif name in ("start-vnode", "stop-vnode"):
        calls.append(Call("vnode_" + name.split("-")[0], (value,)))
    elif name == "remove-vnode":
        calls.append(Call("vnode_remove", (value,)) if value else Call("vnodes_remove"))
    elif name == "get-image":
        args = (subopts["vnode"], subopts.get("dest") or ".")
        calls.append(Call("vfilesystem_image", args, show="none"))
    elif name == "execute":
        calls.append(Call("vnode_execute", (subopts["vnode"], subopts["command"]), show="lines"))
    elif name == "create-vroute":
        args = (subopts["vnetsrc"], subopts["vnetdest"], subopts["gateway"])
        calls.append(Call("vroute_create", args))
    elif name == "complete-vroutes":
        calls.append(Call("vroute_complete"))
    elif name == "create-vnetwork":
        calls.append(Call("vnetwork_create", (subopts["vnetwork"], subopts["address"])))
    elif name == "remove-vnetwork":
        calls.append(
            Call("vnetwork_remove", (value,), show="none")
            if value
            else Call("vnetworks_remove", show="none")
        )
    elif name == "create-viface":
        vdesc: dict[str, Any] = {}
        for key in ("vnetwork", "address"):
            if subopts.get(key):
                vdesc[key] = subopts[key]
        if "default" in subopts:
            vdesc["default"] = subopts["default"].lower() == "true"
        calls.append(Call("viface_create", (subopts["vnode"], subopts["iface"], vdesc)))
    elif name == "remove-viface":
        calls.append(Call("viface_remove", (subopts["vnode"], subopts["iface"]), show="none"))
    elif name == "config-viface":
        limits = _traffic(subopts)
        if set(subopts) <= {"vnode", "iface", "direction"}:
            raise Distem1UsageError("At lease one of the two parameters bw or latency must be set")
        direction = subopts.get("direction")
        target = (subopts["vnode"], subopts["iface"])
        if direction is None:
            calls.append(Call("viface_traffic", (*target, limits, limits)))
        elif direction.lower() in ("input", "output"):
            method = "vinput_update" if direction.lower() == "input" else "voutput_update"
            calls.append(Call(method, (*target, limits)))
        else:
            raise Distem1UsageError(f"direction={direction}: INPUT or OUTPUT expected")
    elif name in ("set-vcpu", "config-vcpu"):
        speed = subopts["cpu_speed"]
        if speed.lower() == "unlimited":
            val: Any = 1
            unit = "ratio"
        else:
            val, unit = speed, subopts.get("unit") or "mhz"
        if name == "set-vcpu":
            calls.append(Call("vcpu_create", (subopts["vnode"], val, unit, subopts["corenb"])))
        else:
            calls.append(Call("vcpu_update", (subopts["vnode"], val, unit)))
    elif name == "set-vmem":
        if not subopts.get("mem"):
            raise Distem1UsageError("The mandatory sub-option mem must be set with --set-vmem")
        calls.append(Call("vmem_create", (subopts["vnode"], subopts["mem"], subopts.get("swap"))))
    elif name in ("get-pnode-info", "get-vnode-info", "get-vnetwork-info"):
        kind = name.split("-")[1]
        calls.append(Call(f"{kind}_info", (value,)) if value else Call(f"{kind}s_info"))
    elif name == "save-config":
        opts = _check(name, sub_options(value)) if value else {}
        calls.append(Call("platform_info", show="save", target=opts.get("configfile")))
    elif name == "load-config":
        if subopts["format"].upper() != "JSON":
            raise Distem1UsageError(
                f"--load-config format={subopts['format']} is not supported by pydistem: "
                "only JSON (a pydistem platform document)"
            )
        if subopts.get("rootfs"):
            plan.notes.append("--load-config rootfs= ignored: images come from the document")
        calls.append(Call("platform_deploy", (FileText(subopts.get("configfile")),)))
    else:  # pragma: no cover - every option in _OPTIONS is handled above
        raise Distem1UsageError(f"--{name} is not supported by pydistem")


def ruby_inspect(value: Any) -> str:
    """Python data as Ruby's ``inspect``/``pp`` printed it (``{"a"=>1, "b"=>nil}``)."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        inner = ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(ruby_inspect(v) for v in value) + "]"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return '"' + escaped.replace("#{", "\\#{") + '"'
    return str(value)
