"""Grid'5000 stand-ins on loopback for the g5k adapter tests.

``g5k_loopback`` starts the reference-API stand-in (HTTP Basic auth on) and a frontend
stand-in (its own sshd on a free loopback port), and a private HOME holding execo's
``~/.execo.conf.py`` (API URL, fast polling, how to reach the frontend) and
``~/.python-grid5000.yaml`` (the API login): the usual places, so ``distem`` runs with
the real execo code paths, changed by configuration only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.standins.g5k_api import World, serve
from tests.standins.g5k_frontend import Frontend

TOKEN = "pw-9f8e7d6c5b4a-SECRET"
DISTEM = str(Path(sys.executable).parent / "distem")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class G5kStandins:
    root: Path
    home: Path
    frontend: Frontend
    world: World
    api_url: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def saved(self) -> list[Path]:
        return sorted((self.state_dir / "reservations").glob("*.json"))

    def platform(self, **testbed: Any) -> Path:
        """A platform file whose ``testbed:`` is g5k on site rennes plus ``testbed``."""
        vif = {"name": "if0", "vnetwork": "vnet"}
        doc = {
            "testbed": {"adapter": "g5k", "site": "rennes", "nodes": 2, "gateway": "none"},
            "vnetworks": [{"name": "vnet", "address": "10.144.0.0/24"}],
            "vnodes": [{"name": "node-[1-2]", "runtime": "netns", "vifaces": [vif]}],
        }
        doc["testbed"].update(testbed)
        path = self.root / "platform.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def distem(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DISTEM, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [DISTEM, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )


@pytest.fixture
def g5k_loopback(tmp_path: Path) -> Iterator[G5kStandins]:
    if os.geteuid() != 0:
        pytest.skip("the frontend stand-in runs an sshd (needs root)")
    home = tmp_path / "home"
    home.mkdir()
    key = home / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    port = free_port()
    frontend = Frontend(tmp_path / "frontend")
    # the nodes' "sshd" is the frontend's: kadeploy3's stand-in checks that nodes answer
    nodes = {f"paravance-{i}.rennes.grid5000.fr": f"127.0.0.1:{port}" for i in (1, 2, 3)}
    frontend.install(nodes, start_delay=0.3)
    keys = tmp_path / "frontend" / "authorized_keys"
    keys.write_text(key.with_suffix(".pub").read_text())
    world = World(
        {"rennes": {"paravance": 3}, "nancy": {"gros": 2}},
        auth=("alice", TOKEN),
        log=tmp_path / "api.jsonl",
    )
    server = serve(world, port=0, base="/stable/")
    api_url = f"http://127.0.0.1:{server.server_address[1]}/stable/"
    (home / ".execo.conf.py").write_text(
        "g5k_configuration = {\n"
        f"    'api_uri': {api_url!r},\n"
        "    'polling_interval': 0.5,\n"
        "    'tiny_polling_interval': 0.2,\n"
        "}\n"
        "default_frontend_connection_params = {\n"
        "    'host_rewrite_func': lambda site: '127.0.0.1',\n"
        f"    'port': {port}, 'user': 'root', 'keyfile': {str(key)!r},\n"
        "}\n"
    )
    (home / ".python-grid5000.yaml").write_text(
        yaml.safe_dump({"username": "alice", "password": TOKEN})
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYDISTEM_STATE_DIR": str(tmp_path / "state"),
        "PYDISTEM_PID_FILE": str(tmp_path / "distemd.pid"),
        "PYDISTEM_LOG_FILE": str(tmp_path / "distemd.log"),
        "COLUMNS": "200",
    }
    frontend.start_sshd("127.0.0.1", port, keys)
    try:
        yield G5kStandins(tmp_path, home, frontend, world, api_url, env)
    finally:
        frontend.stop_sshd()
        server.shutdown()
        server.server_close()
