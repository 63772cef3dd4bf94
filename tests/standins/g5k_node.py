"""Stand-in for a Grid'5000 node on the standard environment (a job without
``-t deploy``): the login user gets in over SSH, root does not until ``sudo-g5k`` says so.

The node's sshd runs in a mount namespace of its own where

- ``/root/.ssh`` is the node's directory ``<dir>/root-ssh``: root's
  ``~/.ssh/authorized_keys`` starts empty, as on a freshly booted standard-environment
  node (only that directory: the rest of /root may hold the Python the tests run);
- ``/etc/passwd`` also lists the login user, whose home is ``<dir>/home/<user>`` with the
  key it logs in with. That user is a uid-0 alias: what the stand-in enforces is
  Grid'5000's protocol (root's key file, and what ``sudo-g5k`` checks), not kernel
  privileges;
- ``sudo-g5k`` comes first on ``PATH``. Like the real one it runs its command as root
  only on a node that a running, non-deploy job of the frontend stand-in holds; it
  records that the node must be redeployed at the job's end (``redeploy`` in the job)
  and refuses otherwise (exit 1, with the reason).

By hand (in a network namespace of yours, with a frontend stand-in's state dir):
    python -m tests.standins.g5k_node serve --dir /tmp/node1 --netns ns1 \\
        --address 10.0.0.5 --fqdn paravance-1.rennes.grid5000.fr --frontend /tmp/fe \\
        --user alice --authorized-key ~/.ssh/id_ed25519.pub
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.standins.g5k_frontend import job_state, locked_state
from tests.standins.sshd import spawn_sshd, stop_sshd, write_sshd_config

SSHD = "/usr/sbin/sshd"


class Node:
    """One standard-environment node: its files and its sshd."""

    def __init__(self, directory: Path, fqdn: str, frontend_dir: Path) -> None:
        self.dir = Path(directory)
        self.fqdn = fqdn
        self.frontend_dir = Path(frontend_dir)
        self.root_ssh = self.dir / "root-ssh"
        self.bin = self.dir / "bin"
        self._sshd: subprocess.Popen[bytes] | None = None

    def install(self, user: str, public_key: str) -> None:
        """``sudo-g5k``, an empty root key file, and ``user`` with ``public_key``."""
        self.root_ssh.mkdir(parents=True, exist_ok=True)
        (self.root_ssh / "authorized_keys").write_text("")
        home = self.dir / "home" / user
        (home / ".ssh").mkdir(parents=True, exist_ok=True)
        (home / ".ssh" / "authorized_keys").write_text(public_key.strip() + "\n")
        passwd = Path("/etc/passwd").read_text()
        (self.dir / "passwd").write_text(passwd + f"{user}:x:0:0:stand-in login:{home}:/bin/sh\n")
        self.bin.mkdir(exist_ok=True)
        script = self.bin / "sudo-g5k"
        root = Path(__file__).resolve().parents[2]
        script.write_text(
            "#!/bin/sh\n"
            f"PYTHONPATH={shlex.quote(str(root))} exec {shlex.quote(sys.executable)} -S "
            '-m tests.standins.g5k_node sudo-g5k "$@"\n'
        )
        script.chmod(0o755)

    def root_keys(self) -> str:
        return (self.root_ssh / "authorized_keys").read_text()

    def start_sshd(self, netns: str, address: str, host_key: Path, etc_binds: str = "") -> None:
        """The node's sshd on ``address`` inside ``netns``; ``etc_binds``: shell commands
        run first in its mount namespace (the bed's /etc/netns binds)."""
        path = ":".join([str(self.bin), "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"])
        config = write_sshd_config(
            self.dir / "sshd_config",
            listen=address,
            port=22,
            host_key=host_key,
            pid_file=self.dir / "sshd.pid",
            authorized_keys="%h/.ssh/authorized_keys",
            extra=(
                "Subsystem sftp internal-sftp",
                f"SetEnv PATH={path} G5K_STANDIN_DIR={self.frontend_dir} "
                f"G5K_NODE={self.fqdn} PYENV_REHASH_TIMEOUT=1",
            ),
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        inner = (
            f"{etc_binds}mount --bind {shlex.quote(str(self.dir / 'passwd'))} /etc/passwd && "
            f"mkdir -p /root/.ssh && mount --bind {shlex.quote(str(self.root_ssh))} /root/.ssh && "
            f"hostname {shlex.quote(self.fqdn.split('.')[0])} && "
            f"exec {SSHD} -D -e -f {shlex.quote(str(config))}"
        )
        cmd = [
            "nsenter", f"--net=/run/netns/{netns}", "unshare", "--uts", "--mount",
            "--propagation", "slave", "sh", "-c", inner,
        ]  # fmt: skip
        probe = ["ip", "netns", "exec", netns, "ss", "-Hltn", "src", address, "sport", "= :22"]
        self._sshd = spawn_sshd(cmd, self.dir / "sshd.log", probe, "node")

    def stop_sshd(self) -> None:
        stop_sshd(self._sshd)
        self._sshd = None


def sudo_g5k(argv: list[str]) -> int:
    """``sudo-g5k [CMD...]``: run CMD as root on a node of a running standard job."""
    frontend = os.environ.get("G5K_STANDIN_DIR")
    node = os.environ.get("G5K_NODE")
    if not frontend or not node:
        print("sudo-g5k: not on a Grid'5000 node", file=sys.stderr)
        return 1
    with locked_state(Path(frontend)) as state:
        jobs = [
            j
            for j in state["jobs"].values()
            if node in j["nodes"] and job_state(j, state) == "Running"
        ]
        if not jobs:
            print(f"sudo-g5k: no running job of yours holds {node}", file=sys.stderr)
            return 1
        job = jobs[0]
        if "deploy" in job["types"]:
            print(
                f"sudo-g5k: job {job['id']} is a deploy job: log in as root instead",
                file=sys.stderr,
            )
            return 1
        job["redeploy"] = sorted(set(job.get("redeploy") or []) | {node})
    print(f"sudo-g5k: {node} will be redeployed at the end of job {job['id']}", file=sys.stderr)
    return subprocess.run(argv or ["/bin/sh"]).returncode


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["sudo-g5k"]:
        return sudo_g5k(args[1:])
    parser = argparse.ArgumentParser(
        prog="python -m tests.standins.g5k_node",
        description="A stand-in Grid'5000 node on the standard environment, with sudo-g5k.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    s = sub.add_parser("serve", help="install the node's files and run its sshd")
    s.add_argument("--dir", type=Path, required=True)
    s.add_argument("--netns", required=True, help="the network namespace to listen in")
    s.add_argument("--address", required=True)
    s.add_argument("--fqdn", required=True, help="e.g. paravance-1.rennes.grid5000.fr")
    s.add_argument("--frontend", type=Path, required=True, help="the frontend stand-in's dir")
    s.add_argument("--user", required=True, help="the Grid'5000 login")
    s.add_argument("--authorized-key", type=Path, required=True)
    sub.add_parser("sudo-g5k", help="what the node's sudo-g5k runs")
    a = parser.parse_args(args)
    node = Node(a.dir, a.fqdn, a.frontend)
    node.install(a.user, a.authorized_key.read_text())
    host_key = a.dir / "host_key"
    if not host_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)])
    node.start_sshd(a.netns, a.address, host_key)
    print(f"node {a.fqdn} on {a.address}:22 in {a.netns}; Ctrl-C stops")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        node.stop_sshd()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
