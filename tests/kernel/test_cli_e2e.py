"""The ``distem`` CLI end to end: a real ``distemd -d`` subprocess, real LXC and netns.

Each test starts its own daemon (free port, tmp state dir, unique tag) and drives the
CLI as a subprocess, as a user would. The fixture quits the platform and stops the
daemon in ``finally``, and checks that nothing with the test's tag is left.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pydistem.client import Client
from pydistem.images.build import build_busybox

pytestmark = [pytest.mark.kernel, pytest.mark.lxc]

BIN = Path(sys.executable).parent
DISTEM = str(BIN / "distem")
DISTEMD = str(BIN / "distemd")


@dataclass
class Distemd:
    url: str
    port: int
    tag: str
    env: dict[str, str]
    image: Path
    workdir: Path

    def client(self) -> Client:
        return Client(self.url, token=(self.workdir / "state" / "token").read_text().strip())

    def distem(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DISTEM, *argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leftovers(tag: str) -> list[str]:
    """Kernel objects and containers named after this daemon's tag."""
    found = []
    for cmd in (["ip", "netns", "list"], ["lxc-ls", "-1"], ["ip", "-o", "link"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        found += [line.split()[0] for line in out.splitlines() if f"pd{tag}-" in line]
    return found


@pytest.fixture
def distemd(tmp_path: Path) -> Iterator[Distemd]:
    """A real ``distemd -d`` on a free port; quit and stopped afterwards, whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("needs root (distemd drives netlink, LXC, cgroups)")
    port = free_port()
    tag = "c" + secrets.token_hex(2)
    state = tmp_path / "state"
    image = build_busybox(tmp_path / "busybox.tar.gz")
    env = {
        **os.environ,
        "PYDISTEM_URL": f"http://127.0.0.1:{port}",
        "PYDISTEM_TOKEN_FILE": str(state / "token"),
        "PYDISTEM_PID_FILE": str(tmp_path / "distemd.pid"),
        "PYDISTEM_LOG_FILE": str(tmp_path / "distemd-started.log"),
        "COLUMNS": "200",
    }
    env.pop("PYDISTEM_TOKEN", None)
    log = (tmp_path / "distemd.log").open("wb")
    cmd = [DISTEMD, "-d", "--port", str(port), "--state-dir", str(state), "--tag", tag]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    d = Distemd(f"http://127.0.0.1:{port}", port, tag, env, image, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not Client(d.url).health():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("distemd did not start:\n" + (tmp_path / "distemd.log").read_text())
            time.sleep(0.1)
        yield d
    finally:
        try:
            if proc.poll() is None:
                with d.client() as c:
                    c.quit()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    assert leftovers(tag) == [], f"left behind: {leftovers(tag)}"


def pings(addr: str) -> str:
    """A shell command: up to 5 one-echo pings, exit 0 at the first reply (the first
    echoes right after a start are sometimes lost while the data path comes up)."""
    return f"for i in 1 2 3 4 5; do ping -c 1 -W 1 {addr} && exit 0; done; exit 1"


def ok(res: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert res.returncode == 0, (
        f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    )
    return res


def test_distem1_sequence_runs_unchanged(distemd: Distemd):
    img = distemd.image
    host = socket.gethostname()
    ok(distemd.distem("--coordinator", f"host=127.0.0.1,port={distemd.port}",
                      "--init-pnode", "localhost"))  # fmt: skip
    ok(distemd.distem("--create-vnetwork", "vnetwork=vnet,address=10.144.0.0/22"))
    ok(distemd.distem("--create-vnode", f"vnode=node1,pnode=localhost,rootfs=file://{img}"))
    ok(distemd.distem("--create-vnode", f"vnode=node2,pnode={host},rootfs={img}"))
    ok(distemd.distem("--create-viface", "vnode=node1,iface=if0,vnetwork=vnet,default=true"))
    ok(distemd.distem("--create-viface", "vnode=node2,iface=if0,vnetwork=vnet"))
    ok(distemd.distem("--start-vnode", "node1"))
    ok(distemd.distem("--start-vnode=node2"))
    assert ok(distemd.distem("--execute", "vnode=node1,command=hostname")).stdout == "node1\n"
    info = ok(distemd.distem("--get-vnode-info", "node2")).stdout
    assert '"name"=>"node2"' in info and '"status"=>"RUNNING"' in info
    with distemd.client() as c:
        addr2 = c.vnode_info("node2")["vifaces"][0]["address"]
    res = distemd.distem("--execute", f"vnode=node1,command={pings(addr2)}")
    assert res.returncode == 0, res.stdout + res.stderr
    bad = distemd.distem("--execute", "vnode=node1,command=exit 3")
    assert bad.returncode == 3
    ok(distemd.distem("-q"))
    with distemd.client() as c:
        assert c.vnodes_info() == [] and c.vnetworks_info() == []
    assert leftovers(distemd.tag) == []


def test_deploy_execute_destroy(distemd: Distemd, tmp_path: Path):
    platform = tmp_path / "p.yaml"
    platform.write_text(f"""
vnetworks:
  - {{name: vnet, address: 10.150.0.0/24}}
vnodes:
  - name: n-[1-2]
    image: file://{distemd.image}
    vifaces: [{{name: if0, vnetwork: vnet}}]
  - name: probe
    runtime: netns
    vifaces: [{{name: if0, vnetwork: vnet}}]
""")
    res = ok(distemd.distem("deploy", str(platform)))
    assert "ping matrix" in res.stdout and "✓" in res.stdout and "✗" not in res.stdout
    assert res.stdout.count("RUNNING") == 3
    assert ok(distemd.distem("execute", "n-1", "--", "hostname")).stdout == "n-1\n"
    assert distemd.distem("execute", "n-2", "--", "sh", "-c", "exit 7").returncode == 7
    listed = json.loads(ok(distemd.distem("--json", "vnode", "list")).stdout)
    assert {v["name"] for v in listed} == {"n-1", "n-2", "probe"}
    # a second deploy of the same file shows it instead of failing
    again = ok(distemd.distem("deploy", str(platform)))
    assert "already deployed" in again.stderr
    ok(distemd.distem("destroy"))
    with distemd.client() as c:
        assert c.vnodes_info() == [] and c.vnetworks_info() == []
    assert leftovers(distemd.tag) == []
    # --run: run everywhere, then destroy
    res = ok(distemd.distem("deploy", str(platform), "--run", "hostname"))
    assert "n-1" in res.stdout and "n-2" in res.stdout
    with distemd.client() as c:
        assert c.vnodes_info() == []


def test_native_subcommands(distemd: Distemd):
    ok(distemd.distem("pnode", "init", "localhost"))
    ok(distemd.distem("vnetwork", "create", "vnet", "10.151.0.0/24"))
    ok(distemd.distem("vnode", "create", "v-[1-2]", "--image", f"file://{distemd.image}",
                      "--vnetwork", "vnet"))  # fmt: skip
    ok(distemd.distem("vnode", "start", "v-[1-2]"))
    ok(distemd.distem("wait", "--timeout", "60"))
    ok(distemd.distem("viface", "traffic", "v-1", "if0", "--bandwidth", "10mbit",
                      "--direction", "output"))  # fmt: skip
    with distemd.client() as c:
        vif = c.vnode_info("v-1")["vifaces"][0]
        assert vif["output"]["bandwidth"] == "10mbit" and vif["input"] is None
        c.vinput_update("v-1", "if0", {"bandwidth": "20mbit"})  # keeps the output limit
        vif = c.vnode_info("v-1")["vifaces"][0]
        assert vif["input"]["bandwidth"] == "20mbit" and vif["output"]["bandwidth"] == "10mbit"
        addr = c.vnode_info("v-2")["vifaces"][0]["address"]
        assert c.vnode_execute("v-1", pings(addr)).ok
    res = ok(distemd.distem("execute", "all", "--", "hostname"))
    assert "v-1" in res.stdout and "v-2" in res.stdout
    ok(distemd.distem("vnode", "stop", "v-2"))
    ok(distemd.distem("vnode", "remove", "--all"))
    ok(distemd.distem("vnetwork", "remove", "vnet"))
    ok(distemd.distem("clean"))


BAD_PLATFORMS = {
    "duplicate": ("vnodes:\n  - {name: a, runtime: netns}\n  - {name: a, runtime: netns}\n",
                  "vnodes[1].name"),
    "cidr": ("vnetworks:\n  - {name: n, address: 10.0.0.0/33}\n", "vnetworks[0].address"),
    "outside": ("vnetworks:\n  - {name: n, address: 10.160.0.0/24}\n"
                "vnodes:\n  - name: a\n    runtime: netns\n"
                "    vifaces: [{name: if0, vnetwork: n, address: 192.168.9.9}]\n",
                "vnodes[0].vifaces[0].address"),
    "badname": ("vnodes:\n  - {name: 'bad;name', runtime: netns}\n", "vnodes[0].name"),
    "missing-image": ("vnodes:\n  - {name: a, image: 'file:///nonexistent/x.tar.gz'}\n",
                      "vnodes[0]"),
    "dotdot": ("vnodes:\n  - {name: a, image: 'file:///var/../etc/x.tar.gz'}\n", "vnodes[0]"),
    "unknown-pnode": ("vnodes:\n  - {name: a, runtime: netns, host: nosuchpnode}\n",
                      "vnodes[0].host"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_PLATFORMS))
def test_bad_platform_is_refused_and_changes_nothing(distemd: Distemd, tmp_path: Path, case: str):
    text, field = BAD_PLATFORMS[case]
    ok(distemd.distem("pnode", "init"))
    platform = tmp_path / f"{case}.yaml"
    # a valid vnetwork first: all or nothing means it must not be created either
    platform.write_text("vnetworks:\n  - {name: keep, address: 10.170.0.0/24}\n" + text
                        if not text.startswith("vnetworks") else text)  # fmt: skip
    res = distemd.distem("deploy", str(platform))
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("error: ") and field in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    with distemd.client() as c:
        assert c.vnodes_info() == [] and c.vnetworks_info() == []
    assert leftovers(distemd.tag) == []


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["vnetwork", "create", "bad;name", "10.0.0.0/24"], "name"),
        (["vnetwork", "create", "n", "10.0.0.0"], "address"),
        (["vnode", "create", "a", "--runtime", "netns", "--host", "nosuchpnode"], "host"),
        (["vnode", "create", "a", "--image", "file:///x/../y.tar.gz"], "image"),
        (["--create-vnetwork", "vnetwork=n,address=300.0.0.0/8"], "address"),
        (["--create-vnode", "vnode=a,rootfs=/nonexistent.tar.gz"], "vfilesystem"),
    ],
)
def test_bad_cli_input_exits_2_with_field(distemd: Distemd, argv: list[str], field: str):
    ok(distemd.distem("pnode", "init"))
    res = distemd.distem(*argv)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("error: ") and field in res.stderr.split(":")[1], res.stderr
    with distemd.client() as c:
        assert c.vnodes_info() == [] and c.vnetworks_info() == []
