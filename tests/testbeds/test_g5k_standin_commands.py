"""The Grid'5000 stand-ins' KaVLAN and sudo-g5k commands answer as the real ones do,
run as the frontend's and a node's sessions run them (no SSH: the same scripts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.standins.g5k_frontend import Frontend
from tests.standins.g5k_node import Node

pytestmark = [pytest.mark.testbeds]

N1, N2 = "paravance-1.rennes.grid5000.fr", "paravance-2.rennes.grid5000.fr"


def run(fe: Frontend, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(fe.bin / argv[0]), *argv[1:]], capture_output=True, text=True, env={
            **os.environ, "TZ": "Europe/Paris"}
    )  # fmt: skip


@pytest.fixture
def fe(tmp_path: Path) -> Frontend:
    f = Frontend(tmp_path / "fe")
    nodes = {N1: "127.0.0.1:1", N2: "127.0.0.1:1", "paravance-3.rennes.grid5000.fr": "x"}
    f.install(nodes, start_delay=0)
    return f


def test_kavlan_ids_lists_and_sets(fe: Frontend) -> None:
    plain = run(fe, "oarsub", "-l", "nodes=1", "sleep 100")
    jid = plain.stdout.split("OAR_JOB_ID=")[1].split()[0]
    no = run(fe, "kavlan", "-V", "-j", jid)
    assert (no.returncode, no.stdout.strip()) == (1, "no vlan found")
    local = run(fe, "oarsub", "-t", "deploy", "-l", "{type='kavlan-local'}/vlan=1+nodes=1",
                "sleep 100")  # fmt: skip
    lid = local.stdout.split("OAR_JOB_ID=")[1].split()[0]
    assert 1 <= int(run(fe, "kavlan", "-V", "-j", lid).stdout) <= 3
    routed = run(fe, "oarsub", "-t", "deploy", "-l", "{type='kavlan'}/vlan=1+nodes=1", "sleep 100")
    rid = routed.stdout.split("OAR_JOB_ID=")[1].split()[0]
    vlan = int(run(fe, "kavlan", "-V", "-j", rid).stdout)
    assert 4 <= vlan <= 9
    [node] = fe.jobs()[rid]["nodes"]
    assert run(fe, "kavlan", "-l", "-j", rid).stdout == ""  # nobody in it yet
    refused = run(fe, "kavlan", "-s", "-i", str(vlan), "-j", rid, "-m", "nope.rennes.grid5000.fr")
    assert refused.returncode == 1 and "not in job" in refused.stdout
    ok = run(fe, "kavlan", "-s", "-i", str(vlan), "-j", rid, "-m", node)
    assert ok.returncode == 0, ok.stdout
    short = node.split(".")[0]
    assert run(fe, "kavlan", "-l", "-j", rid).stdout.split() == [
        f"{short}-kavlan-{vlan}.rennes.grid5000.fr"
    ]


def test_sudo_g5k_only_on_a_node_of_a_running_standard_job(fe: Frontend, tmp_path: Path) -> None:
    node = Node(tmp_path / "n1", N1, fe.dir)
    node.install("alice", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey alice")

    def sudo(*cmd: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "G5K_STANDIN_DIR": str(fe.dir), "G5K_NODE": N1}
        return subprocess.run(
            [str(node.bin / "sudo-g5k"), *cmd], capture_output=True, text=True, env=env
        )

    nojob = sudo("true")
    assert nojob.returncode == 1 and "no running job" in nojob.stderr
    deploy = run(fe, "oarsub", "-t", "deploy", "-l", "nodes=2", "sleep 100")
    did = deploy.stdout.split("OAR_JOB_ID=")[1].split()[0]
    refused = sudo("true")
    assert refused.returncode == 1 and "deploy job" in refused.stderr
    run(fe, "oardel", did)
    std = run(fe, "oarsub", "-l", "nodes=2", "sleep 100")
    sid = std.stdout.split("OAR_JOB_ID=")[1].split()[0]
    ran = sudo(sys.executable, "-c", "print('as root')")
    assert ran.returncode == 0 and ran.stdout.strip() == "as root", ran.stderr
    assert fe.jobs()[sid]["redeploy"] == [N1]
