"""A stand-in Grid'5000 site on a host bed, for ``distem deploy`` end to end.

    operator (the researcher's laptop: runs distem, the REST API stand-in on its loopback)
      └─ ssh via access.grid5000.fr (host1, the gateway)
           ├─ rennes.grid5000.fr (host2): the frontend stand-in's sshd, OAR + kadeploy3
           ├─ paravance-1.rennes.grid5000.fr (host3)  ┐ the nodes: root SSH (deployed), or
           └─ paravance-2.rennes.grid5000.fr (host4)  ┘ the standard environment (sudo-g5k)

Names resolve through ``/etc/netns/<namespace>/hosts``, which ``ip netns exec`` mounts over
``/etc/hosts``: Grid'5000's DNS for this bed only, with the nodes' ``-kavlan-N`` names too.
Credentials and settings go where a Grid'5000 user keeps them (``~/.python-grid5000.yaml``,
``~/.execo.conf.py``) in a private HOME.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pydistem.testing import unique_tag
from tests.standins.g5k_api import World, serve
from tests.standins.g5k_frontend import Frontend
from tests.standins.g5k_node import Node

DISTEM = str(Path(sys.executable).parent / "distem")
TOKEN = "g5k-pw-3141592653-SECRET"
NODES = ("paravance-1.rennes.grid5000.fr", "paravance-2.rennes.grid5000.fr")


@dataclass
class G5kSite:
    bed: Any
    frontend: Frontend
    world: World
    nodes: list[Node]  # standard-environment node stand-ins (empty when deployed)
    tmp: Path
    env: dict[str, str]

    def platform(self, doc: dict[str, Any], name: str = "g5k.yaml") -> Path:
        """``doc`` with the ``bootstrap:`` block that hosts sharing one file system need
        (a state dir and tag per host, this checkout's venv), written to a file."""
        tag = unique_tag()[:4]
        doc["testbed"]["bootstrap"] = {
            "venv": sys.prefix,
            "state_dir": str(self.tmp / "state" / "{index}"),
            "tag": tag + "{index}",
            "install_packages": False,
        }
        path = self.tmp / name
        path.write_text(yaml.safe_dump(doc))
        return path

    def deploy(self, platform: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return self.bed.operator_run(
            [DISTEM, "deploy", str(platform), *args], env=self.env, timeout=300
        )

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.tmp.rglob("*.log"))


def _hosts(bed: Any) -> str:
    access, front, n1, n2 = bed.hosts
    lines = [
        "127.0.0.1 localhost",
        f"{access.address} access.grid5000.fr",
        f"{front.address} rennes.grid5000.fr",
    ]
    for fqdn, host in zip(NODES, (n1, n2), strict=True):
        short, domain = fqdn.split(".", 1)
        kavlan = " ".join(f"{short}-kavlan-{v}.{domain}" for v in range(1, 22))
        lines.append(f"{host.address} {fqdn} {kavlan}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def g5k_site(hostbed: Any, tmp_path: Path, *, standard: bool = False) -> Iterator[G5kSite]:
    """The bed, the stand-ins and the operator's HOME; everything stopped afterwards.

    ``standard``: the nodes run the standard environment (node stand-ins: the login
    ``alice`` gets in, root only after ``sudo-g5k``); the frontend and the gateway are
    reached as root. Otherwise the nodes answer root SSH (what kadeploy3 ``-k`` gives)."""
    bed = hostbed(4, sshd=[0] if standard else [0, 2, 3])
    access, front, n1, n2 = bed.hosts
    login = "alice" if standard else "root"
    hosts = _hosts(bed)
    etc: list[Path] = []
    frontend = Frontend(tmp_path / "frontend")
    nodes: list[Node] = []
    server = None
    try:
        for ns in (bed.operator_ns, access.netns, n1.netns, n2.netns):
            d = Path("/etc/netns") / ns
            d.mkdir(parents=True, exist_ok=True)
            etc.append(d)
            (d / "hosts").write_text(hosts)
        bed.stop_sshd(access)  # restarted so that its mount namespace binds the hosts file
        bed.start_sshd(access)
        frontend.install({NODES[0]: n1.address, NODES[1]: n2.address}, start_delay=0.5)
        keys = tmp_path / "frontend" / "authorized_keys"
        keys.write_text(bed.key.with_suffix(".pub").read_text())
        frontend.start_sshd(front.address, 22, keys, netns=front.netns, hostname="rennes")
        if standard:
            from tests.hostbed import _etc_binds

            for fqdn, host in zip(NODES, (n1, n2), strict=True):
                node = Node(tmp_path / fqdn.split(".")[0], fqdn, frontend.dir)
                node.install(login, bed.key.with_suffix(".pub").read_text())
                nodes.append(node)
                node.start_sshd(
                    host.netns, host.address, bed.dir / "host_key", _etc_binds(host.netns)
                )
        world = World({"rennes": {"paravance": 2}}, auth=(login, TOKEN), log=tmp_path / "api.jsonl")
        with bed.operator():
            server = serve(world, "127.0.0.1", 0, "/stable/")
        api_uri = f"http://127.0.0.1:{server.server_address[1]}/stable/"
        home = tmp_path / "home"
        home.mkdir()
        (home / ".python-grid5000.yaml").write_text(
            yaml.safe_dump({"username": login, "password": TOKEN, "uri": api_uri})
        )
        frontend_user = ", 'user': 'root'" if standard else ""
        (home / ".execo.conf.py").write_text(
            "g5k_configuration = {'polling_interval': 0.5, 'tiny_polling_interval': 0.2}\n"
            f"default_frontend_connection_params = {{'keyfile': {str(bed.key)!r}{frontend_user}}}\n"
            f"default_connection_params = {{'keyfile': {str(bed.key)!r}}}\n"
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "COLUMNS": "200",
            "PYDISTEM_STATE_DIR": str(tmp_path / "cli-state"),
            "PYDISTEM_PID_FILE": str(tmp_path / "distemd.pid"),
            "PYDISTEM_LOG_FILE": str(tmp_path / "distemd.log"),
        }
        yield G5kSite(bed, frontend, world, nodes, tmp_path, env)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        for node in nodes:
            node.stop_sshd()
        frontend.stop_sshd()
        for d in etc:
            shutil.rmtree(d, ignore_errors=True)
