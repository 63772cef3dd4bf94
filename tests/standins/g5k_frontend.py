"""Stand-in for a Grid'5000 site frontend: an sshd whose OAR and kadeploy commands
answer like the real ones (as /work/shared facts and execo 2.8.2 expect them).

Commands (in ``<dir>/bin``, first on the PATH the frontend's sshd gives every session):
``oarsub``, ``oarstat`` (``-fj``, ``-sj``, ``-pj``, ``-u``), ``oarprint``, ``oardel``,
``oarwalltime``, ``g5k-subnets`` (``-i -m -j``, ``-a -j``), ``kavlan`` (``-V -j ID``,
``-l -j ID``, ``-s -i VLAN -j ID -m FQDN``) and ``kadeploy3`` (``-k -d -e|-a ENV [--vlan N]
-m FQDN...``, which moves the nodes into the job's VLAN). Jobs live in ``<dir>/state.json``
(locked), with OAR's state machine: Waiting -> Running (after ``start_delay``) ->
Terminated at the end of the walltime; ``oardel`` sends a job to Error. Dates are
printed in Europe/Paris time, as the frontends do.

Faults (``Frontend.set_fault`` or ``--fault``): ``refuse`` (oarsub's admission rule
rejects the job, exit 8), ``never_start`` (jobs stay Waiting, no prediction),
``deploy_fail=FQDN`` (kadeploy3 reports that node KO), ``extend_refuse``, ``vlan_stuck``
(kadeploy3 ``--vlan`` reports success but leaves the nodes out of the VLAN).

By hand (sshd on loopback, commands run as you):
    python -m tests.standins.g5k_frontend serve --dir /tmp/fe --port 2222 \\
        --node paravance-1=127.0.0.1 --authorized-key ~/.ssh/id_ed25519.pub
    ssh -p 2222 root@127.0.0.1 oarsub -l nodes=1 'sleep 1000'
    python -m tests.standins.g5k_frontend run --dir /tmp/fe oarstat -u
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

COMMANDS = (
    "oarsub", "oarstat", "oarprint", "oardel", "oarwalltime", "g5k-subnets", "kavlan",
    "kadeploy3",
)  # fmt: skip
FIRST_JOB = 1894417
SITE_NET = ipaddress.ip_network("10.156.0.0/14")  # the site's /14 (Rennes)
SUBNET_POOL = ipaddress.ip_network("10.158.4.0/22")  # first /22 handed out
SSHD = "/usr/sbin/sshd"


# ------------------------------------------------------------------------------ state


class Frontend:
    """The frontend's files: commands, state, and (optionally) its own sshd."""

    def __init__(self, directory: Path, site: str = "rennes") -> None:
        self.dir = Path(directory)
        self.site = site
        self.state_file = self.dir / "state.json"
        self.bin = self.dir / "bin"
        self._sshd: subprocess.Popen[bytes] | None = None

    # setting up ----------------------------------------------------------------------

    def install(self, nodes: dict[str, str], start_delay: float = 0.5) -> None:
        """Write the commands and a fresh state: ``nodes`` maps FQDN -> address."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bin.mkdir(exist_ok=True)
        me = Path(__file__).resolve()
        for name in COMMANDS:
            script = self.bin / name
            script.write_text(
                "#!/bin/sh\n"
                f"exec {shlex.quote(sys.executable)} -S {shlex.quote(str(me))} "
                f'run --dir {shlex.quote(str(self.dir))} {name} "$@"\n'
            )
            script.chmod(0o755)
        state = {
            "site": self.site,
            "nodes": nodes,
            "faults": {},
            "jobs": {},
            "next_id": FIRST_JOB,
            "start_delay": start_delay,
        }
        self.state_file.write_text(json.dumps(state, indent=2))

    def set_fault(self, name: str, value: Any = True) -> None:
        with locked_state(self.dir) as state:
            if value is None:
                state["faults"].pop(name, None)
            else:
                state["faults"][name] = value

    def jobs(self) -> dict[str, dict[str, Any]]:
        """Every job with its current state (as oarstat would print it)."""
        with locked_state(self.dir) as state:
            return {
                jid: {**job, "state": job_state(job, state)} for jid, job in state["jobs"].items()
            }

    def live_jobs(self) -> list[str]:
        """Ids of the jobs still holding resources (not Terminated or Error)."""
        return [j for j, job in self.jobs().items() if job["state"] not in ("Terminated", "Error")]

    # sshd ----------------------------------------------------------------------------

    def sshd_config(self, listen: str, port: int, authorized_keys: Path) -> Path:
        """An sshd config whose sessions have our commands first on PATH, Paris time and
        silent shells; root logs in with the keys in ``authorized_keys``."""
        host_key = self.dir / "host_key"
        if not host_key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
            )
        path = ":".join([str(self.bin), "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"])
        from tests.standins.sshd import write_sshd_config  # not in the commands (-S)

        return write_sshd_config(
            self.dir / "sshd_config",
            listen=listen,
            port=port,
            host_key=host_key,
            pid_file=self.dir / "sshd.pid",
            authorized_keys=authorized_keys,
            extra=(
                "AllowTcpForwarding yes",
                f"SetEnv PATH={path} TZ=Europe/Paris G5K_STANDIN_DIR={self.dir} HOME=/root",
            ),
        )

    def start_sshd(
        self, listen: str, port: int, authorized_keys: Path, netns: str | None = None,
        hostname: str | None = None,
    ) -> None:  # fmt: skip
        """Run sshd (in ``netns`` when given, under ``hostname`` in its own UTS ns)."""
        config = self.sshd_config(listen, port, authorized_keys)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        inner = f"exec {SSHD} -D -e -f {shlex.quote(str(config))}"
        if hostname:
            inner = f"hostname {shlex.quote(hostname)} && {inner}"
        cmd = ["unshare", "--uts", "sh", "-c", inner]
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        from tests.standins.sshd import spawn_sshd  # not in the commands: they run with -S

        probe = ["ss", "-Hltn", "sport", f"= :{port}"]
        if netns:
            probe = ["ip", "netns", "exec", netns, *probe]
        self._sshd = spawn_sshd(cmd, self.dir / "sshd.log", probe, "frontend")

    def stop_sshd(self) -> None:
        from tests.standins.sshd import stop_sshd

        stop_sshd(self._sshd)
        self._sshd = None


@contextlib.contextmanager
def locked_state(directory: Path) -> Iterator[dict[str, Any]]:
    """The state, locked for the block and written back after it."""
    path = Path(directory) / "state.json"
    with (Path(directory) / "state.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text())
        yield state
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, path)


def job_state(job: dict[str, Any], state: dict[str, Any]) -> str:
    """OAR's state machine, evaluated now."""
    if job.get("deleted"):
        return "Error"
    if job.get("never_start"):
        return "Waiting"
    now = time.time()
    if now < job["start"]:
        return "Waiting"
    if now < job["start"] + job["walltime"]:
        return "Running"
    return "Terminated"


def paris(ts: float) -> str:
    """A date as the frontend prints it (its local time: run with TZ=Europe/Paris)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def duration(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds % 3600 // 60}:{seconds % 60}"


def parse_walltime(text: str) -> int:
    parts = [int(p) for p in text.split(":")] + [0, 0]
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


# ------------------------------------------------------------------------------ commands


class Fail(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def oarsub(argv: list[str], d: Path) -> int:
    p = argparse.ArgumentParser(prog="oarsub", add_help=False)
    p.add_argument("-l", dest="resources", default="")
    p.add_argument("-t", dest="types", action="append", default=[])
    p.add_argument("-n", dest="name")
    p.add_argument("-p", dest="properties")
    p.add_argument("-q", dest="queue", default="default")
    p.add_argument("-r", dest="reservation")
    p.add_argument("-d", dest="directory")
    p.add_argument("--project")
    p.add_argument("-k", action="store_true")
    p.add_argument("-i", dest="keyfile")
    p.add_argument("command", nargs="?", default="")
    args, rest = p.parse_known_args(argv)
    if rest:
        raise Fail(f"# Error: unknown option(s) {' '.join(rest)}", 8)
    walltime = 3600
    wanted: dict[str, Any] = {"nodes": 0, "cluster": None, "subnets": 0, "vlan": None}
    for part in args.resources.split(","):
        part = part.strip()
        if part.startswith("walltime="):
            walltime = parse_walltime(part.split("=", 1)[1])
        elif part:
            for res in part.split("+"):
                parse_resource(res.strip(), wanted)
    print("[ADMISSION RULE] Modify resource description with type constraints")
    with locked_state(d) as state:
        if state["faults"].get("refuse"):
            print("# Error: a job with these resources is refused by admission rule 42 "
                  "(stand-in fault: refuse)")  # fmt: skip
            return 8
        if wanted["nodes"] == 0 and not wanted["subnets"]:
            wanted["nodes"] = 1
        busy = {n for j in state["jobs"].values() if job_state(j, state) not in
                ("Terminated", "Error") for n in j["nodes"]}  # fmt: skip
        cluster = wanted["cluster"]
        free = [
            n
            for n in sorted(state["nodes"])
            if n not in busy and (cluster is None or n.startswith(cluster + "-"))
        ]
        if len(free) < wanted["nodes"]:
            print(f"# Error: not enough resources: {wanted['nodes']} node(s) asked, "
                  f"{len(free)} free")  # fmt: skip
            return 8
        taken = {s for j in state["jobs"].values() if job_state(j, state) not in
                 ("Terminated", "Error") for s in j["subnets"]}  # fmt: skip
        subnets = []
        for net in SITE_NET.subnets(new_prefix=22):
            if len(subnets) >= wanted["subnets"]:
                break
            if net >= SUBNET_POOL and str(net) not in taken:
                subnets.append(str(net))
        job_id = state["next_id"]
        state["next_id"] += 1
        types = args.types
        if args.keyfile or args.k:
            print("Import job key from file: " + (args.keyfile or ""))
        else:
            print("Generate a job key...")
        state["jobs"][str(job_id)] = {
            "id": job_id,
            "name": args.name or "",
            "types": types,
            "resources": args.resources,
            "nodes": free[: wanted["nodes"]],
            "subnets": subnets,
            "vlan": vlan_id(wanted["vlan"], job_id),
            "walltime": walltime,
            "submitted": time.time(),
            "start": time.time() + float(state["start_delay"]),
            "never_start": bool(state["faults"].get("never_start")),
            "command": args.command or "",
            "properties": args.properties,
            "queue": args.queue,
        }
    print(f"OAR_JOB_ID={job_id}")
    return 0


def vlan_id(kind: str | None, job_id: int) -> int | None:
    """A VLAN id in the range of its KaVLAN type: kavlan-local 1-3, kavlan (routed)
    4-9, kavlan-global 10-21."""
    if kind is None:
        return None
    first, count = {"kavlan-local": (1, 3), "kavlan-global": (10, 12)}.get(kind, (4, 6))
    return first + job_id % count


def parse_resource(res: str, wanted: dict[str, Any]) -> None:
    m = re.match(r"^(?:\{(?P<sql>[^}]*)\}/)?(?P<kind>\w+)=(?P<n>\d+)$", res)
    if not m:
        raise Fail(f"# Error: cannot parse the resource request {res!r}", 8)
    kind, n, sql = m["kind"], int(m["n"]), m["sql"] or ""
    if kind in ("nodes", "host"):
        wanted["nodes"] += n
        c = re.search(r"cluster\s*=\s*'([\w-]+)'", sql)
        if c:
            wanted["cluster"] = c.group(1)
    elif kind == "slash_22":
        wanted["subnets"] += n
    elif kind == "vlan":
        wanted["vlan"] = re.search(r"type\s*=\s*'([\w-]+)'", sql).group(1) if sql else "kavlan"
    elif kind not in ("core", "cpu"):
        raise Fail(f"# Error: unknown resource type {kind!r}", 8)


def _job(state: dict[str, Any], job_id: str) -> dict[str, Any]:
    job = state["jobs"].get(str(job_id))
    if job is None:
        raise Fail(f"Cannot find job {job_id}", 1)
    return job


def oarstat(argv: list[str], d: Path) -> int:
    p = argparse.ArgumentParser(prog="oarstat", add_help=False)
    p.add_argument("-f", action="store_true")
    p.add_argument("-s", action="store_true")
    p.add_argument("-p", action="store_true")
    p.add_argument("-u", action="store_true")
    p.add_argument("-j", dest="job")
    args = p.parse_args(argv)
    with locked_state(d) as state:
        if args.u:
            print("Job id     Name           User           Submission Date     S Queue")
            print("---------- -------------- -------------- ------------------- - ----------")
            for job in state["jobs"].values():
                st = job_state(job, state)
                if st in ("Terminated", "Error"):
                    continue
                print(f"{job['id']:<10} {job['name'][:14]:<14} {'root':<14} "
                      f"{paris(job['submitted'])} {st[0]} {job['queue']}")  # fmt: skip
            return 0
        job = _job(state, args.job)
        st = job_state(job, state)
        if args.s:
            print(f"{job['id']}: {st}")
        elif args.p:
            for i, node in enumerate(job["nodes"]):
                print(f" resource_id = '{100 + i}' , network_address = '{node}' , "
                      f"cluster = '{node.split('-')[0]}' , type = 'default'")  # fmt: skip
            for i, net in enumerate(job["subnets"]):
                print(f" resource_id = '{900 + i}' , network_address = '' , "
                      f"subnet_address = '{net.split('/')[0]}' , type = 'subnet'")  # fmt: skip
            if job["vlan"]:
                print(f" resource_id = '999' , network_address = '' , vlan = '{job['vlan']}' , "
                      "type = 'kavlan'")  # fmt: skip
        else:
            print_full(job, st)
    return 0


def print_full(job: dict[str, Any], st: str) -> None:
    """``oarstat -fj``, format 3 (snake_case), as Grid'5000 prints it now."""
    lines = [
        f"id: {job['id']}",
        f"    name = {job['name']}",
        "    owner = root",
        f"    state = {st}",
        f'    wanted_resources = -l "{job["resources"]}"',
        f"    types = {', '.join(job['types'])}",
        f"    assigned_hostnames = {'+'.join(job['nodes'])}",
        f"    queue = {job['queue']}",
        f"    command = {job['command']}",
        "    launching_directory = /root",
        "    type = PASSIVE",
        f"    properties = {job['properties'] or ''}",
        "    reservation = None",
        f"    walltime = {duration(job['walltime'])}",
        f"    submission_time = {paris(job['submitted'])}",
    ]
    if st != "Waiting":
        lines.append(f"    start_time = {paris(job['start'])}")
    if st in ("Terminated", "Error"):
        lines.append(f"    stop_time = {paris(time.time())}")
    lines.append(f"    message = R=1,W={duration(job['walltime'])},J=B,N={job['name']}")
    if job.get("never_start"):
        lines.append("    scheduled_start = no prediction")
    else:
        lines.append(f"    scheduled_start = {paris(job['start'])}")
    lines.append("    events = ")
    print("\n".join(lines))


def oarprint(argv: list[str], d: Path) -> int:
    """``oarprint PROPERTY -f -``: the distinct values of PROPERTY in ``oarstat -pj``."""
    prop = argv[0] if argv else "host"
    seen: list[str] = []
    for line in sys.stdin:
        for key, value in re.findall(r"(\w+)\s*=\s*'([^']*)'", line):
            if key == prop and value and value not in seen:
                seen.append(value)
    print("\n".join(seen))
    return 0


def oardel(argv: list[str], d: Path) -> int:
    with locked_state(d) as state:
        for job_id in argv:
            job = state["jobs"].get(job_id)
            if job is None:
                print(f"Deleting the job = {job_id} ...Cannot find job {job_id}")
                return 1
            print(f"Deleting the job = {job_id} ...REGISTERED.")
            job["deleted"] = True
        print(f"The job(s) [ {' '.join(argv)} ] will be deleted in the near future.")
    return 0


def oarwalltime(argv: list[str], d: Path) -> int:
    job_id, change = argv[0], argv[1]
    with locked_state(d) as state:
        job = _job(state, job_id)
        if state["faults"].get("extend_refuse"):
            print(f"Walltime change for job {job_id}: refused (stand-in fault)")
            return 3
        job["walltime"] += parse_walltime(change.lstrip("+"))
        print(f"Accepted: walltime change request updated for job {job_id} (+{change.lstrip('+')})")
    return 0


def g5k_subnets(argv: list[str], d: Path) -> int:
    p = argparse.ArgumentParser(prog="g5k-subnets", add_help=False)
    for flag in ("-i", "-m", "-a", "-p", "-s"):
        p.add_argument(flag, action="store_true")
    p.add_argument("-j", dest="job", required=True)
    args = p.parse_args(argv)
    with locked_state(d) as state:
        job = _job(state, args.job)
    site = state["site"]
    for cidr in job["subnets"]:
        net = ipaddress.ip_network(cidr)
        if args.a:
            print("\t".join([cidr, str(SITE_NET.broadcast_address), str(SITE_NET.netmask),
                             str(SITE_NET.broadcast_address - 1), str(SITE_NET.network_address),
                             f"dns.{site}.grid5000.fr", "172.16.111.118"]))  # fmt: skip
        elif args.p:
            print(cidr)
        else:
            for ip in list(net)[1:-1]:
                o = ip.packed
                mac = f"00:16:3E:{o[1]:02X}:{o[2]:02X}:{o[3]:02X}"
                print(f"{ip}\t{mac}" if args.m else str(ip))
    return 0


def kavlan(argv: list[str], d: Path) -> int:
    """``kavlan -V -j JOB`` (the job's VLAN id), ``kavlan -l -j JOB`` (the nodes in it, by
    their ``-kavlan-N`` names, one a line) and ``kavlan -s -i VLAN -j JOB -m FQDN...``
    (put nodes in the VLAN, as kadeploy3 ``--vlan`` does). A job without a VLAN prints
    ``no vlan found`` and exits 1."""
    p = argparse.ArgumentParser(prog="kavlan", add_help=False)
    p.add_argument("-V", action="store_true", dest="get_id")
    p.add_argument("-l", action="store_true", dest="list")
    p.add_argument("-s", action="store_true", dest="set")
    p.add_argument("-i", dest="vlan")
    p.add_argument("-j", dest="job", required=True)
    p.add_argument("-m", dest="nodes", action="append", default=[])
    args, rest = p.parse_known_args(argv)
    if rest:
        print(f"ERROR: unknown option(s) {' '.join(rest)}")
        return 1
    with locked_state(d) as state:
        job = _job(state, args.job)
        if not job["vlan"]:
            print("no vlan found")
            return 1
        if args.set:
            if str(args.vlan) not in (str(job["vlan"]), "DEFAULT"):
                print(f"ERROR: VLAN {args.vlan} does not belong to job {args.job}")
                return 1
            foreign = [n for n in args.nodes if n not in job["nodes"]]
            if foreign:
                print(f"ERROR: node(s) not in job {args.job}: {' '.join(foreign)}")
                return 1
            members = set(job.get("vlan_nodes") or [])
            if args.vlan == "DEFAULT":
                members -= set(args.nodes)
            else:
                members |= set(args.nodes)
            job["vlan_nodes"] = sorted(members)
            print(f"all nodes are configured in the vlan {args.vlan}")
            return 0
        if args.list:
            site = state["site"]
            for node in job.get("vlan_nodes") or []:
                print(kavlan_name(node, job["vlan"], site))
            return 0
    print(job["vlan"])
    return 0


def kavlan_name(fqdn: str, vlan: int, site: str) -> str:
    """``paravance-1.rennes.grid5000.fr`` in VLAN 4: ``paravance-1-kavlan-4.rennes...``."""
    short = fqdn.split(".", 1)[0]
    return f"{short}-kavlan-{vlan}.{site}.grid5000.fr"


def kadeploy3(argv: list[str], d: Path) -> int:
    p = argparse.ArgumentParser(prog="kadeploy3", add_help=False)
    p.add_argument("-k", nargs="?", const="", dest="key")
    p.add_argument("-d", action="store_true")
    p.add_argument("-e", dest="env")
    p.add_argument("-a", dest="env_file")
    p.add_argument("-u", dest="user")
    p.add_argument("--vlan")
    p.add_argument("-m", dest="nodes", action="append", default=[])
    args, rest = p.parse_known_args(argv)
    if rest or not (args.env or args.env_file) or not args.nodes:
        print(f"ERROR: bad arguments {' '.join(rest)} (need -e ENV and -m NODE)")
        return 1
    with locked_state(d) as state:
        unknown = [n for n in args.nodes if n not in state["nodes"]]
        fail = state["faults"].get("deploy_fail")
        addresses = dict(state["nodes"])
        if unknown:
            print(f"ERROR: unknown node(s): {' '.join(unknown)}")
            return 1
        if args.vlan is not None:  # the nodes go into the job's VLAN before they boot
            jobs = [j for j in state["jobs"].values() if set(args.nodes) <= set(j["nodes"])
                    and job_state(j, state) == "Running"]  # fmt: skip
            if not jobs or str(jobs[0]["vlan"]) != str(args.vlan):
                print(f"ERROR: VLAN {args.vlan} is not reserved by a running job of these nodes")
                return 1
            if not state["faults"].get("vlan_stuck"):
                members = set(jobs[0].get("vlan_nodes") or []) | set(args.nodes)
                jobs[0]["vlan_nodes"] = sorted(members)
    dep = f"D-{uuid.uuid4()}"
    print(f"Deployment #{dep} started")
    print("Grab the key file /root/.ssh/authorized_keys")
    ok, ko = [], {}
    for node in args.nodes:
        print(f"Launching a deployment on {node}")
    print("Performing a Deploy[SetDeploymentEnvUntrusted] step")
    print("  switch_pxe\n  reboot")
    for node in args.nodes:
        if node == fail:
            ko[node] = "Deploy[SetDeploymentEnvUntrusted] reboot: the node did not come back"
        elif not _answers_ssh(addresses[node]):
            ko[node] = "Deploy[BootNewEnv] check_nodes: unreachable"
        else:
            ok.append(node)
    print("End of step Deploy[SetDeploymentEnvUntrusted] after 1s")
    print(f"Deployment #{dep} done\n")
    if ok:
        print("The deployment is successful on nodes")
        print("\n".join(ok))
    if ko:
        print("The deployment failed on nodes")
        print("\n".join(f"{n} ({why})" for n, why in ko.items()))
    return 0  # as kadeploy3: 0 even when some nodes are KO


def _answers_ssh(address: str) -> bool:
    """The node's sshd answers (``address`` may carry a port: ``127.0.0.1:2222``)."""
    host, _, port = address.partition(":")
    try:
        with socket.create_connection((host, int(port or 22)), timeout=3) as s:
            return s.recv(4).startswith(b"SSH")
    except OSError:
        return False


HANDLERS = {
    "oarsub": oarsub, "oarstat": oarstat, "oarprint": oarprint, "oardel": oardel,
    "oarwalltime": oarwalltime, "g5k-subnets": g5k_subnets, "kavlan": kavlan,
    "kadeploy3": kadeploy3,
}  # fmt: skip


# ------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.standins.g5k_frontend",
        description="A stand-in Grid'5000 frontend: OAR/kadeploy commands behind an sshd.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    s = sub.add_parser("serve", help="install the commands and run the sshd in the foreground")
    s.add_argument("--dir", type=Path, required=True, help="state and commands go here")
    s.add_argument("--site", default="rennes")
    s.add_argument("--listen", default="127.0.0.1")
    s.add_argument("--port", type=int, default=2222)
    s.add_argument("--netns", help="run the sshd inside this network namespace")
    s.add_argument(
        "--node", action="append", default=[], metavar="FQDN=ADDRESS",
        help="a node of the site (repeatable), e.g. paravance-1.rennes.grid5000.fr=10.0.0.5",
    )  # fmt: skip
    s.add_argument("--authorized-key", type=Path, required=True, help="a public key for root")
    s.add_argument("--fault", action="append", default=[], metavar="NAME[=VALUE]")
    r = sub.add_parser("run", help="run one frontend command against a state dir")
    r.add_argument("--dir", type=Path, default=os.environ.get("G5K_STANDIN_DIR"))
    r.add_argument("command", choices=sorted(HANDLERS))
    r.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.action == "run":
        try:
            return HANDLERS[args.command](list(args.args), args.dir)
        except Fail as exc:
            print(exc)
            return exc.code
    nodes = dict(n.split("=", 1) for n in args.node)
    fe = Frontend(args.dir, args.site)
    fe.install(nodes)
    for fault in args.fault:
        name, _, value = fault.partition("=")
        fe.set_fault(name, value or True)
    keys = args.dir / "authorized_keys"
    keys.write_text(args.authorized_key.read_text())
    fe.start_sshd(args.listen, args.port, keys, args.netns)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"frontend {args.site} on {args.listen}:{args.port} (state {args.dir}); Ctrl-C stops")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        fe.stop_sshd()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
