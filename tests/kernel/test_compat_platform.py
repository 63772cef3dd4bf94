"""Distem compat end to end against one real ``distemd -d --distem-compat`` (LXC vnodes):
the seed's Distem 1.x CLI sequence through our own ``distem --distem-wire``, save ->
quit -> load of a vplatform, the global /etc/hosts and ARP tables, the peers latency
matrix, loose inputs real scripts send, and 100 vnodes from one ``vnodes_create``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from compat_daemon import FORM, call, distemd, www_form

import pydistem.testing
from pydistem.agent import etchosts
from pydistem.coordinator.compat.encoding import ERROR_HEADER
from pydistem.plugins.shapers.htb import HtbShaper

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.lxc,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("lxc-start") is None, reason="needs the lxc tools"),
]
TAG = "wirep"
DISTEM = str(Path(sys.executable).with_name("distem"))


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with distemd(tmp_path_factory.mktemp("distemd"), TAG) as p:
        yield p


@pytest.fixture
def h(port: int) -> Iterator[httpx.Client]:
    """An HTTP client of the daemon; quits the platform after each test."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300, trust_env=False) as c:
        try:
            yield c
        finally:
            c.delete("/pnodes")


def distem(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [DISTEM, "--distem-wire", "--coordinator", f"host=127.0.0.1,port={port}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def test_seed_cli_sequence_and_saved_platform(
    port: int, h: httpx.Client, image: Path, tmp_path: Path
) -> None:
    """The Distem 1.x sequence of the seed, then --save-config, -q, --load-config."""

    def ok(*args: str) -> str:
        r = distem(port, *args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    ok("--init-pnode", "localhost")
    ok("--create-vnetwork", "vnetwork=vnet,address=10.144.0.0/22")
    for n in ("node1", "node2"):
        ok("--create-vnode", f"vnode={n},pnode=localhost,rootfs={image}")
        ok("--create-viface", f"vnode={n},iface=if0,vnetwork=vnet,default=true")
        ok("--start-vnode", n)
    limits = "vnode=node1,iface=if0,bw=10mbps,latency=5ms,direction=OUTPUT"
    r = distem(port, "--config-viface", limits)
    if HtbShaper().probe()["sch_netem"]:
        assert r.returncode == 0, r.stderr
    else:  # the kernel feature is missing: Distem's error, naming the module
        assert r.returncode == 1 and "501" in r.stderr and "sch_netem" in r.stderr, r.stderr
    ok("--config-viface", "vnode=node1,iface=if0,bw=10mbps,direction=OUTPUT")
    assert ok("--execute", "vnode=node1,command=hostname") == "node1\n"
    info = ok("--get-vnode-info", "node1")
    assert '"name"=>"node1"' in info and '"status"=>"RUNNING"' in info
    assert '"rate"=>"10mbps"' in info

    cfg = tmp_path / "cfg.json"
    ok("--save-config", f"configfile={cfg}")
    before = json.loads(cfg.read_text())["vplatform"]
    assert set(before["vnodes"]) == {"node1", "node2"}
    ok("-q")
    assert call(h, "GET", "/vnodes") == {} and call(h, "GET", "/vnetworks") == {}
    ok("--load-config", f"format=JSON,configfile={cfg}")
    after = call(h, "GET", "/vplatform")["vplatform"]

    def summary(p: dict[str, Any]) -> dict[str, Any]:
        return {
            name: (
                v["status"],
                v["host"],
                [(i["name"], i["vnetwork"], i["address"], i["output"]) for i in v["vifaces"]],
            )
            for name, v in p["vnodes"].items()
        }

    assert summary(after) == summary(before)
    assert {n: v["address"] for n, v in after["vnetworks"].items()} == {"vnet": "10.144.0.0/22"}
    assert ok("--execute", "vnode=node2,command=hostname") == "node2\n"
    ok("--stop-vnode", "node1")
    ok("--remove-vnode", "node1")
    assert list(call(h, "GET", "/vnodes")) == ["node2"]
    ok("-q")
    assert call(h, "GET", "/vnodes") == {}


def _build(h: httpx.Client, image: Path, names: list[str], start: bool = True) -> None:
    call(h, "POST", "/pnodes", target=["localhost"])
    call(h, "POST", "/vnetworks", name="vnet", address="10.144.0.0/22")
    desc = {
        "vfilesystem": {"image": str(image), "shared": True},
        "vifaces": [{"name": "if0", "vnetwork": "vnet", "default": "true"}],
    }
    call(h, "POST", "/vnodes", names=names, desc=desc, ssh_key={}, **{"async": "false"})
    if start:
        call(h, "PUT", "/vnodes", names=names, desc={"status": "RUNNING"}, type="update")


def test_global_etchosts_arptable_and_peers_latencies(h: httpx.Client, image: Path) -> None:
    _build(h, image, ["n1", "n2", "n3"])
    call(h, "POST", "/global_etchosts")
    begin, end = etchosts.markers(TAG)
    pnode_hosts = Path("/etc/hosts").read_text()
    block = pnode_hosts[pnode_hosts.index(begin) : pnode_hosts.index(end)]
    assert "10.144.0.1 n1\n" in block and "10.144.0.3 n3-vnet\n" in block
    inside = call(h, "POST", "/vnodes/n1/commands", command="cat /etc/hosts")
    assert "10.144.0.2 n2" in inside and "10.144.0.3 n3-vnet" in inside

    call(h, "POST", "/global_arptable")
    arp = call(h, "POST", "/vnodes/n1/commands", command="cat /proc/net/arp")
    peers = {line.split()[0]: line.split()[2] for line in arp[1:]}
    assert peers.get("10.144.0.2") == "0x6" and peers.get("10.144.0.3") == "0x6", arp
    assert "10.144.0.1" not in peers  # not itself
    assert call(h, "POST", "/vnodes/n1/commands", command="ping -c1 -W2 n3")

    matrix = [[0, 10, 0.5], [10, 0, 20], [0.5, 20, 0]]
    if HtbShaper().probe()["sch_netem"]:
        call(h, "POST", "/peers_matrix_latencies", vnodes=["n1", "n2", "n3"], matrix=matrix)
    else:
        r = call(
            h, "POST", "/peers_matrix_latencies", 501, vnodes=["n1", "n2", "n3"], matrix=matrix
        )
        assert r.headers[ERROR_HEADER].startswith("NotImplementedError")
        assert "sch_netem" in r.headers[ERROR_HEADER]
    r = call(h, "POST", "/peers_matrix_latencies", 400, vnodes=["n1", "n2"], matrix=[[0, 1]])
    assert "matrix" in r.headers[ERROR_HEADER]

    call(h, "DELETE", "/pnodes")
    assert begin not in Path("/etc/hosts").read_text(), "quit removes the marked block"


def test_loose_inputs(h: httpx.Client, image: Path) -> None:
    """What real scripts send and Distem accepts."""
    hostname = os.uname().nodename
    (p,) = call(h, "POST", "/pnodes", target="localhost")  # a raw string, not JSON
    # host bits set, and a dotted netmask
    assert call(h, "POST", "/vnetworks", name="a", address="10.144.0.1/27")["address"] == (
        "10.144.0.0/27"
    )
    net = call(h, "POST", "/vnetworks", name="b", address="10.145.0.0/255.255.255.0")
    assert net["address"] == "10.145.0.0/24"
    desc = {
        "HOST": hostname,  # keys in any case; host as the pnode's hostname
        "VFilesystem": {"Image": str(image), "shared": "true", "unknown": 1},
        "vifaces": [
            {
                "name": "if0",
                "vnetwork": "a",
                "default": True,
                "OUTPUT": {"bandwidth": {"rate": "1mbps"}},
            },
            {"name": "if1", "address": "10.145.0.7", "default": "false"},  # no prefix
        ],
        "colour": "blue",  # unknown keys: ignored (and logged)
    }
    v = call(h, "POST", "/vnodes/x1", desc=desc, ssh_key=None)  # a bare ssh_key
    assert v["host"] == p["address"]
    assert [i["address"] for i in v["vifaces"]] == ["10.144.0.1/27", "10.145.0.7/24"]
    assert v["vifaces"][0]["output"] == {"bandwidth": {"rate": "1mbps"}}
    v2 = call(
        h,
        "POST",
        "/vnodes/x2",
        desc={
            "host": "127.0.0.1",
            "vfilesystem": {"image": str(image)},
            "vifaces": [{"name": "if0", "address": "10.144.0.9/27"}],
        },
    )
    assert v2["vifaces"][0]["address"] == "10.144.0.9/27"  # an address with its prefix
    call(h, "PUT", "/vnodes", names=["x1", "x2"], desc={"status": "running"}, type="UPDATE")
    # numbers as strings, a single name instead of a list
    assert call(h, "POST", "/wait_vnodes", opts={"vnodes": "x1", "timeout": "30"}) == ["true"]
    # sub-millisecond delays are understood (the kernel may lack netem: then 501)
    r = h.put(
        "/vnodes/x1/ifaces/if0/output",
        content=www_form([("desc", '{"latency":{"delay":"0.03ms"}}')]).encode(),
        headers={"Content-Type": FORM},
    )
    assert r.status_code in (200, 501), r.headers.get(ERROR_HEADER)
    if r.status_code == 501:
        assert "sch_netem" in r.headers[ERROR_HEADER]
    # the pnode's CPU algorithm, case-insensitive, upper-cased as Distem does
    algo = call(h, "PUT", f"/pnodes/{hostname}", desc={"ALGORITHMS": {"cpu": "Gov"}})
    assert algo == {"algorithms": {"cpu": "GOV"}}
    assert call(h, "GET", "/pnodes/127.0.0.1")["algorithms"] == {"cpu": "gov"}
    bad = call(h, "PUT", "/pnodes/localhost", 400, desc={"algorithms": {"cpu": "turbo"}})
    assert "algorithms.cpu" in bad.headers[ERROR_HEADER]
    # vfilesystem: cow maps to the overlay, a bad disk_throttling is refused naming it
    r = call(
        h,
        "POST",
        "/vnodes/x3",
        400,
        desc={
            "vfilesystem": {
                "image": str(image),
                "disk_throttling": {
                    "hierarchy": "v1",
                    "limits": [{"device": "/dev/sda", "read_limit": "1 per hour"}],
                },
            }
        },
    )
    assert "disk[0].read" in r.headers[ERROR_HEADER]
    assert "x3" not in call(h, "GET", "/vnodes"), "a refused vnode leaves nothing"
    x3 = call(h, "POST", "/vnodes/x3", desc={"vfilesystem": {"image": str(image), "cow": "true"}})
    assert x3["vfilesystem"]["cow"] is True


@pytest.mark.slow
def test_100_vnodes_from_one_vnodes_create_come_up(h: httpx.Client, image: Path) -> None:
    names = [f"v{i}" for i in range(100)]
    call(h, "POST", "/pnodes", target=["localhost"])
    call(h, "POST", "/vnetworks", name="big", address="10.150.0.0/24")
    desc = {
        "vfilesystem": {"image": str(image), "shared": True},
        "vifaces": [{"name": "if0", "vnetwork": "big", "default": "true"}],
        "status": "RUNNING",
    }
    created = call(h, "POST", "/vnodes", names=names, desc=desc, ssh_key={}, **{"async": "false"})
    assert [v["name"] for v in created] == names
    assert {v["status"] for v in created} == {"RUNNING"}
    assert created[-1]["vifaces"][0]["address"] == "10.150.0.100/24"
    assert call(h, "POST", "/wait_vnodes", opts={"timeout": 120}) == ["true"]
    out = call(h, "POST", "/commands", names=[names[0], names[99]], command="ping -c1 -W2 v50")
    assert {n: o["success"] for n, o in out.items()} == {"v0": "ok", "v99": "ok"}, out


PROBE = """
import http.client, sys
src, url = sys.argv[1], sys.argv[2]
conn = http.client.HTTPConnection(url, timeout=10, source_address=(src, 0))
conn.request("GET", "/vnodes")
r = conn.getresponse()
print(r.status, r.getheader("X-Application-Error-Code") or "")
"""


def test_allow_list_from_a_network_namespace(tmp_path: Path, kernel_unchanged: object) -> None:
    """A caller in another netns: refused (403) outside --distem-compat-allow, served inside."""
    tag = pydistem.testing.unique_tag()
    ns, host_if = f"pdc{tag}", f"pdc{tag}h"
    subnet = f"10.231.{int(tag[1:], 16) % 250}"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    try:
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "addr", "add", f"{subnet}.1/29", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        for a in (f"{subnet}.2/29", f"{subnet}.3/29"):
            run("ip", "-n", ns, "addr", "add", a, "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        allow = ("--bind", f"{subnet}.1", "--distem-compat-allow", f"{subnet}.2/32")
        with distemd(tmp_path / "state", None, *allow, host=f"{subnet}.1") as port:

            def probe(src: str) -> str:
                argv = ["ip", "netns", "exec", ns, sys.executable, "-c", PROBE]
                out = subprocess.run(
                    [*argv, src, f"{subnet}.1:{port}"], capture_output=True, text=True, check=True
                )
                return out.stdout.strip()

            assert probe(f"{subnet}.2") == "200"
            refused = probe(f"{subnet}.3")
            assert refused.startswith(f"403 ForbiddenError {subnet}.3 is not in"), refused
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
