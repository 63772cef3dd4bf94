"""``distem deploy examples/g5k.yaml`` end to end against a stand-in Grid'5000 built on a
host bed: real execo, real SSH through an access gateway, real bootstrap, real agents.

    operator (the researcher's laptop: runs distem, the REST API stand-in on its loopback)
      └─ ssh via access.grid5000.fr (host1, the gateway)
           ├─ rennes.grid5000.fr (host2): the frontend stand-in's sshd, OAR + kadeploy3
           ├─ paravance-1.rennes.grid5000.fr (host3)  ┐ reserved, "deployed", bootstrapped:
           └─ paravance-2.rennes.grid5000.fr (host4)  ┘ coordinator + agents, VXLAN between

Names resolve through ``/etc/netns/<namespace>/hosts``, which ``ip netns exec`` mounts
over ``/etc/hosts`` for the operator and the gateway: Grid'5000's DNS, for this bed only.
The example file is used as it is, plus a ``bootstrap:`` block that hosts sharing one
file system need (a state dir and tag per host, this checkout's venv). With a VXLAN
vnetwork (the pnodes' vnetworks across machines), every vnode must reach every other.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pydistem.testing import unique_tag
from tests.standins.g5k_api import World, serve
from tests.standins.g5k_frontend import Frontend

pytestmark = [pytest.mark.testbeds, pytest.mark.kernel, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DISTEM = str(Path(sys.executable).parent / "distem")
TOKEN = "g5k-pw-3141592653-SECRET"
NODES = ("paravance-1.rennes.grid5000.fr", "paravance-2.rennes.grid5000.fr")


@pytest.fixture
def netns_hosts() -> Iterator[dict[str, str]]:
    """``{netns: hosts file text}`` to install under /etc/netns; removed afterwards."""
    files: dict[str, str] = {}
    yield files
    for ns in files:
        shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)


def install_hosts(files: dict[str, str], ns: str, text: str) -> None:
    files[ns] = text
    d = Path("/etc/netns") / ns
    d.mkdir(parents=True, exist_ok=True)
    (d / "hosts").write_text(text)


def test_deploy_examples_g5k_against_the_standins(
    kernel_unchanged: object, hostbed, netns_hosts: dict[str, str], tmp_path: Path
) -> None:
    bed = hostbed(4, sshd=[0, 2, 3])
    access, front, n1, n2 = bed.hosts
    hosts = (
        "127.0.0.1 localhost\n"
        f"{access.address} access.grid5000.fr\n"
        f"{front.address} rennes.grid5000.fr\n"
        f"{n1.address} {NODES[0]}\n"
        f"{n2.address} {NODES[1]}\n"
    )
    install_hosts(netns_hosts, bed.operator_ns, hosts)
    install_hosts(netns_hosts, access.netns, hosts)
    bed.stop_sshd(access)  # restarted so that `ip netns exec` mounts its hosts file
    bed.start_sshd(access)

    frontend = Frontend(tmp_path / "frontend")
    frontend.install({NODES[0]: n1.address, NODES[1]: n2.address}, start_delay=0.5)
    keys = tmp_path / "frontend" / "authorized_keys"
    keys.write_text(bed.key.with_suffix(".pub").read_text())
    frontend.start_sshd(front.address, 22, keys, netns=front.netns, hostname="rennes")

    world = World({"rennes": {"paravance": 2}}, auth=("root", TOKEN), log=tmp_path / "api.jsonl")
    with bed.operator():
        server = serve(world, "127.0.0.1", 0, "/stable/")
    api_uri = f"http://127.0.0.1:{server.server_address[1]}/stable/"

    home = tmp_path / "home"
    home.mkdir()
    (home / ".python-grid5000.yaml").write_text(
        yaml.safe_dump({"username": "root", "password": TOKEN, "uri": api_uri})
    )
    (home / ".execo.conf.py").write_text(
        "g5k_configuration = {'polling_interval': 0.5, 'tiny_polling_interval': 0.2}\n"
        f"default_frontend_connection_params = {{'keyfile': {str(bed.key)!r}}}\n"
        f"default_connection_params = {{'keyfile': {str(bed.key)!r}}}\n"
    )
    doc = yaml.safe_load((ROOT / "examples" / "g5k.yaml").read_text())
    tag = unique_tag()[:4]
    doc["testbed"]["bootstrap"] = {
        "venv": sys.prefix,
        "state_dir": str(tmp_path / "state" / "{index}"),
        "tag": tag + "{index}",
        "install_packages": False,
    }
    platform = tmp_path / "g5k.yaml"
    platform.write_text(yaml.safe_dump(doc))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "COLUMNS": "200",
        "PYDISTEM_STATE_DIR": str(tmp_path / "cli-state"),
        "PYDISTEM_PID_FILE": str(tmp_path / "distemd.pid"),
        "PYDISTEM_LOG_FILE": str(tmp_path / "distemd.log"),
    }
    try:
        res = bed.operator_run(
            [DISTEM, "deploy", str(platform), "--run", "ip -4 -o addr show if0"],
            env=env,
            timeout=300,
        )
    finally:
        server.shutdown()
        server.server_close()
        frontend.stop_sshd()
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    # reserved through OAR (real execo), deployed, bootstrapped through the gateway
    assert "submitting an OAR job to rennes" in out and "kadeploy3 debian12-min" in out, out
    assert f"reserved g5k-{1894417}" in out
    assert "coordinator http://" in out
    # the four vnodes ran the command, each with its address on the VXLAN vnetwork
    addresses = re.findall(r"inet (10\.144\.\d+\.\d+)/22", res.stdout)
    assert len(set(addresses)) == 4, res.stdout
    assert doc["vnetworks"][0]["network_type"] == "vxlan"
    assert "✗" not in res.stdout and "✓" in res.stdout  # ping matrix: every vnode, every other
    # the job was released, nothing is saved, the password showed nowhere
    [job] = frontend.jobs().values()
    assert sorted(job["types"]) == ["deploy", "origin=execo"] and job["state"] == "Error"
    assert re.search(r"released\s*│\s*True", res.stderr), res.stderr
    assert not list((tmp_path / "cli-state" / "reservations").glob("*.json"))
    assert all(q["auth"] for q in world.requests) and world.requests
    logs = "\n".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.log"))
    assert TOKEN not in out + logs
    # the vnodes were spread over both nodes (column "host" of the vnodes table)
    rows = [
        [c.strip() for c in line.split("│")]
        for line in res.stdout.splitlines()
        if line.startswith("│ node-") and "RUNNING" in line
    ]
    assert len(rows) == 4 and len({r[3] for r in rows}) == 2, res.stdout
