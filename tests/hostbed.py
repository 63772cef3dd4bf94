"""A multi-host test bed on one machine: N "hosts" as network namespaces on one LAN.

Each host is a network namespace with an ``eth0`` on a shared bridge, its own
address, its own hostname (a UTS namespace around its sshd) and its own sshd that
accepts the bed's root key. An **operator** namespace on the same LAN plays the
researcher's laptop or the testbed frontend: tests reach the hosts from there, never
from the machine's own (root) namespace, so no address outside the bed's
namespaces ever receives traffic. The bridge lives in a namespace of its own too, so
the machine's firewall (Docker's FORWARD policy, br_netfilter) never sees bed traffic,
and two beds built at once share nothing but the naming scheme.

    with HostBed(4, tag) as bed:
        with bed.operator():                 # this thread (and threads it starts) on the LAN
            paramiko_client.connect(bed.hosts[0].address, key_filename=str(bed.key))
        bed.run(bed.hosts[1], ["ip", "-br", "addr"])        # straight in the namespace
        bed.operator_run(["ssh", *bed.ssh_options(), "root@10.199.0.11", "hostname"])

Teardown kills every process left in the bed's namespaces, deletes them, and removes
the bed's files — also when building the bed failed halfway.

By hand: ``python -m tests.hostbed --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydistem.agent import netlink
from pydistem.model.machines import Machine
from tests.standins.sshd import write_sshd_config

SUBNET = ipaddress.ip_network("10.199.0.0/24")
FIRST_HOST = 11  # host i (0-based) is .11 + i
OPERATOR = 254
SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class Host:
    """One host of the bed."""

    index: int
    name: str  # its hostname, e.g. host1
    netns: str  # network namespace name under /run/netns
    address: str  # on eth0, inside SUBNET
    mac: str

    @property
    def machine(self) -> Machine:
        return Machine(host=self.address, port=22, user="root")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class HostBed:
    """``n`` hosts, an operator and a LAN, all in namespaces named ``hb<tag>-*``."""

    def __init__(
        self,
        n: int,
        tag: str,
        *,
        sshd: bool | Sequence[int] = True,
        workdir: Path | None = None,
    ) -> None:
        if os.geteuid() != 0:
            raise PermissionError("a host bed needs root (network namespaces)")
        if not 1 <= n <= OPERATOR - FIRST_HOST:
            raise ValueError(f"n: between 1 and {OPERATOR - FIRST_HOST} hosts, got {n}")
        self.tag = tag
        self.prefix = f"hb{tag}"
        self.n = n
        self.sshd_hosts = set(range(n)) if sshd is True else set(sshd or ())
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.lan = f"{self.prefix}-lan"
        self.operator_ns = f"{self.prefix}-op"
        self.operator_address = str(SUBNET.network_address + OPERATOR)
        self.hosts: list[Host] = []
        self._sshd: dict[int, subprocess.Popen[bytes]] = {}
        self._views: dict[int, str] = {}  # host index -> mount commands of its own view
        self._namespaces: list[str] = []

    # building --------------------------------------------------------------------------

    def __enter__(self) -> HostBed:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def _attach(self, ns: str, port: str, address: str) -> str:
        """A veth from the LAN bridge into ``ns`` as eth0 with ``address``; its MAC."""
        _ip(
            "-n", self.lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns
        )
        _ip("-n", self.lan, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        return _mac(ns)

    def _build(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._netns(self.lan)
        _ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.lan, "link", "set", "br0", "up")
        self._netns(self.operator_ns)
        self._attach(self.operator_ns, "op", self.operator_address)
        for i in range(self.n):
            ns = f"{self.prefix}-h{i + 1}"
            self._netns(ns)
            address = str(SUBNET.network_address + FIRST_HOST + i)
            mac = self._attach(ns, f"h{i + 1}", address)
            self.hosts.append(Host(i, f"host{i + 1}", ns, address, mac))
        if self.sshd_hosts:
            self._keys()
            for i in sorted(self.sshd_hosts):
                self.start_sshd(self.hosts[i])

    def _keys(self) -> None:
        for name in ("host_key", "id_ed25519"):
            if not (self.dir / name).exists():
                subprocess.run(
                    [
                        "ssh-keygen",
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        f"hostbed-{self.tag}",
                        "-f",
                        str(self.dir / name),
                    ],
                    check=True,
                )
        (self.dir / "authorized_keys").mkdir(exist_ok=True)
        self.authorize("root", (self.dir / "id_ed25519.pub").read_text())
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir

    # ssh -------------------------------------------------------------------------------

    @property
    def key(self) -> Path:
        """The private key every host's root accepts."""
        return self.dir / "id_ed25519"

    def authorize(self, user: str, public_key: str) -> None:
        """Let ``user`` log in on every host with ``public_key`` (added to the bed's own
        authorized_keys for that user, not to the machine's)."""
        path = self.dir / "authorized_keys" / user
        with path.open("a") as f:
            f.write(public_key.strip() + "\n")

    def private_view(
        self, host: Host, *, overlay: Sequence[str] = (), empty: Sequence[str] = ()
    ) -> None:
        """Give ``host`` its own file system view (restarts its sshd): each directory of
        ``overlay`` becomes a copy-on-write overlay of this machine's (changes stay in
        the host: apt-get and dpkg there touch nothing here), each of ``empty`` an empty
        tmpfs (a machine that never had what this one keeps there). Everything runs in
        the sshd's mount namespace, so it vanishes with the host."""
        top = self.dir / f"view_{host.name}"
        top.mkdir(exist_ok=True)
        cmds = [f"mount -t tmpfs pdview {top}"]
        for d in overlay:
            name = d.strip("/").replace("/", "_")
            up, work = top / f"{name}.up", top / f"{name}.work"
            cmds.append(f"mkdir -p {up} {work}")
            cmds.append(f"mount -t overlay pdview -o lowerdir={d},upperdir={up},workdir={work} {d}")
        cmds += [f"mount -t tmpfs pdview {d}" for d in empty]
        self._views[host.index] = "".join(f"{c} && " for c in cmds)
        self.stop_sshd(host)
        self.start_sshd(host)

    def start_sshd(self, host: Host) -> None:
        config = write_sshd_config(
            self.dir / f"sshd_{host.name}.conf",
            listen=host.address,
            port=22,
            host_key=self.dir / "host_key",
            pid_file=self.dir / f"sshd_{host.name}.pid",
            authorized_keys=f"{self.dir / 'authorized_keys'}/%u",
            extra=(
                "Subsystem sftp internal-sftp",
                # the hosts share this machine's /root: a login runs its ~/.bashrc,
                # which on some images runs `pyenv rehash`; a lock left by a shell
                # killed at teardown then stalls every later login 60 s
                "SetEnv PYENV_REHASH_TIMEOUT=1",
            ),
        )
        log = open(self.dir / f"sshd_{host.name}.log", "ab")  # noqa: SIM115 - kept by Popen
        # its own UTS namespace, so that `hostname` over SSH prints the host's name; its
        # own mount namespace for /etc/netns/<ns>/* bound over /etc/* as `ip netns exec`
        # does, but NOT its /sys remount, which hides /sys/fs/cgroup (LXC needs it)
        self._sshd[host.index] = subprocess.Popen(
            [
                "nsenter",
                f"--net={netlink.netns_path(host.netns)}",
                "unshare",
                "--uts",
                "--mount",
                "--propagation",
                "slave",
                "sh",
                "-c",
                self._views.get(host.index, "")
                + f"{_etc_binds(host.netns)}hostname {host.name} && exec {SSHD} -D -e -f {config}",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._sshd[host.index].poll() is not None:
                raise RuntimeError(
                    f"sshd on {host.name} exited: "
                    + (self.dir / f"sshd_{host.name}.log").read_text()[-2000:]
                )
            listening = _ip("netns", "exec", host.netns, "ss", "-Hltn", "sport", "= :22").stdout
            if listening.strip():
                return
            time.sleep(0.05)
        raise RuntimeError(f"sshd on {host.name} did not listen within 10 s")

    def stop_sshd(self, host: Host) -> None:
        """The host then refuses SSH connections (as a machine whose sshd is down)."""
        proc = self._sshd.pop(host.index, None)
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(5)

    def ssh_options(self) -> list[str]:
        """OpenSSH client options to reach the hosts as root with the bed's key."""
        return [
            "-i",
            str(self.key),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
        ]

    # running things --------------------------------------------------------------------

    @contextlib.contextmanager
    def operator(self) -> Iterator[None]:
        """Move the calling thread onto the LAN as the operator. Sockets it opens, and
        threads and processes it starts meanwhile, stay there."""
        with netlink.in_netns(netlink.netns_path(self.operator_ns)):
            yield

    def operator_run(self, cmd: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
        return self._run_in(self.operator_ns, cmd, **kw)

    def run(self, host: Host, cmd: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside ``host``'s network namespace (no SSH)."""
        return self._run_in(host.netns, cmd, **kw)

    def _run_in(
        self, ns: str, cmd: Sequence[str], **kw: object
    ) -> subprocess.CompletedProcess[str]:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("check", False)
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], **kw)  # type: ignore[call-overload]

    def drop_foreign_macs(self, host: Host) -> None:
        """Make ``host``'s NIC drop unicast frames not addressed to its own MAC, as the
        virtual NICs of Xen/KVM guests do (no promiscuous mode): an nftables rule on the
        ingress hook of its eth0."""
        rules = (
            "table netdev pdhostbed {\n"
            "  chain ingress {\n"
            "    type filter hook ingress device eth0 priority 0; policy accept;\n"
            f"    ether daddr != {host.mac} ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00"
            " drop\n"
            "  }\n"
            "}\n"
        )
        r = self.run(host, ["nft", "-f", "-"], input=rules)
        if r.returncode:
            raise RuntimeError(f"nft on {host.name}: {r.stderr.strip()}")

    # teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Kill everything in the bed's namespaces, delete them, remove the files."""
        for i in list(self._sshd):
            with contextlib.suppress(Exception):
                self.stop_sshd(self.hosts[i])
        for ns in reversed(self._namespaces):
            _kill_all_in(ns)
        for ns in reversed(self._namespaces):
            _ip("netns", "del", ns, check=False)
        self._namespaces.clear()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _etc_binds(ns: str) -> str:
    """Shell commands binding /etc/netns/<ns>/* over /etc/*, as `ip netns exec` does."""
    d = Path("/etc/netns") / ns
    if not d.is_dir():
        return ""
    return "".join(f"mount --bind {f} /etc/{f.name} && " for f in sorted(d.iterdir()))


def _mac(ns: str) -> str:
    out = _ip("-n", ns, "-o", "link", "show", "eth0").stdout
    return out.split("link/ether", 1)[1].split()[0]


def _kill_all_in(ns: str) -> None:
    """Every process whose network namespace is ``ns``: SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in _ip("netns", "pids", ns, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and _ip("netns", "pids", ns, check=False).stdout.strip():
            time.sleep(0.05)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.hostbed",
        description="Build a bed of N hosts (network namespaces with sshd) on one LAN, "
        "print how to reach them, and tear it all down on Ctrl-C.",
    )
    parser.add_argument("n", type=int, help="number of hosts")
    parser.add_argument("--tag", default="man", help="name tag (namespaces hb<tag>-*)")
    args = parser.parse_args(argv)
    with HostBed(args.n, args.tag) as bed:
        print(f"operator: ip netns exec {bed.operator_ns} bash   ({bed.operator_address})")
        for h in bed.hosts:
            print(
                f"{h.name}: ssh {' '.join(bed.ssh_options())} root@{h.address}   (netns {h.netns})"
            )
        print("Ctrl-C tears the bed down.")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
