"""Distem compat on the real kernel (LXC vnodes, a real ``distemd -d --distem-compat``):
vnodes created without an image, vnode mode GATEWAY, vnode updates and viface
attach/detach through ``PUT``, ``wait_vnodes`` polling a TCP port, and a saved
vplatform with vroutes loaded back. The PyPI ``distem`` client drives the calls it
offers; the others go as Distem's Ruby client sends them (WIRE_CAPTURE.md).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from compat_daemon import RUBY_HEADERS, call, distemd, free_port, python_distem

import pydistem.testing
from pydistem.coordinator.agents import HttpAgentLink
from pydistem.coordinator.compat.encoding import ERROR_HEADER
from pydistem.errors import NotFound
from pydistem.model.specs import VNode

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.lxc,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("lxc-start") is None, reason="needs the lxc tools"),
]


@pytest.fixture
def port(kernel_unchanged: object, tmp_path: Path) -> Iterator[int]:
    """A daemon per test; it quits (DELETE /pnodes) before the kernel is compared."""
    with distemd(tmp_path / "state") as p:
        yield p


@pytest.fixture
def h(port: int) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300, trust_env=False) as c:
        yield c


def run(h: httpx.Client, vnode: str, command: str) -> list[str]:
    return call(h, "POST", f"/vnodes/{vnode}/commands", command=command)  # type: ignore[no-any-return]


def forwarding(h: httpx.Client, vnode: str) -> str:
    return run(h, vnode, "cat /proc/sys/net/ipv4/ip_forward")[0]


def test_vnode_created_without_an_image(port: int, h: httpx.Client, image: Path) -> None:
    """Distem's order: create the vnode, set its filesystem later; a start before that
    is refused with a clear error and changes nothing."""
    d = python_distem(port)
    d.pnode_init(["localhost"])
    d.vnetwork_create("vnet", "10.144.0.0/24")
    v = d.vnode_create("n1", {"vifaces": [{"name": "if0", "vnetwork": "vnet"}]})
    assert v["vfilesystem"] is None and v["status"] == "INIT"
    with pytest.raises(Exception, match=r"InvalidParameterError .*n1 has no image"):
        d.vnode_start("n1")
    assert d.vnode_info("n1")["status"] == "INIT"
    r = call(h, "GET", "/vnodes/n1/filesystem", 404)
    assert r.headers[ERROR_HEADER].startswith("ResourceNotFoundError")
    # python-distem's vfilesystem_create: POST /vnodes/n1/filesystem/
    fs = d.vfilesystem_create("n1", {"image": str(image), "shared": True})
    assert fs["image"] == f"file://{image}"
    assert d.vnode_start("n1")["status"] == "RUNNING"
    assert d.vnode_execute("n1", "hostname") == ["n1"]


def test_gateway_mode_and_a_saved_platform_with_vroutes(h: httpx.Client, image: Path) -> None:
    """``vnode_mode`` turns IPv4 forwarding on and off for real; vroute gateways become
    GATEWAY; a platform saved with its vroutes and loaded back routes again."""
    call(h, "POST", "/pnodes", target=["localhost"])
    call(h, "POST", "/vnetworks", name="left", address="10.161.0.0/24")
    call(h, "POST", "/vnetworks", name="right", address="10.162.0.0/24")
    fs = {"image": str(image), "shared": True}
    for name, nets in (("a", ["left"]), ("gw", ["left", "right"]), ("b", ["right"])):
        vifaces = [{"name": f"if{i}", "vnetwork": n} for i, n in enumerate(nets)]
        call(h, "POST", f"/vnodes/{name}", desc={"vfilesystem": fs, "vifaces": vifaces})
    call(h, "PUT", "/vnodes", names=["a", "gw", "b"], desc={"status": "RUNNING"}, type="update")
    assert forwarding(h, "gw") == "0"
    # the Ruby client's vnode_mode(gw, true): PUT /vnodes/gw desc={"mode":"GATEWAY"}&type=update
    assert call(h, "PUT", "/vnodes/gw", desc={"mode": "GATEWAY"}, type="update")["mode"] == (
        "GATEWAY"
    )
    assert forwarding(h, "gw") == "1"
    assert call(h, "PUT", "/vnodes/gw", desc={"mode": "normal"}, type="update")["mode"] == "NORMAL"
    assert forwarding(h, "gw") == "0"
    r = call(h, "PUT", "/vnodes/gw", 400, desc={"mode": "ROUTER"}, type="update")
    assert "mode" in r.headers[ERROR_HEADER]

    b_ip = call(h, "GET", "/vnodes/b")["vifaces"][0]["address"].split("/")[0]
    assert run(h, "a", f"ping -c1 -W1 {b_ip} >/dev/null 2>&1 && echo ok || echo no") == ["no"]
    call(h, "POST", "/vnetworks/left/routes", destnetwork="right", gatewaynode="gw")
    call(h, "POST", "/vnetworks/right/routes", destnetwork="left", gatewaynode="gw")
    assert call(h, "GET", "/vnodes/gw")["mode"] == "GATEWAY"  # switched, as in Distem
    assert forwarding(h, "gw") == "1"
    assert run(h, "a", f"ping -c1 -W2 {b_ip} >/dev/null && echo ok") == ["ok"]
    r = call(h, "PUT", "/vnodes/gw", 400, desc={"mode": "NORMAL"}, type="update")
    assert "gateway of vroute" in r.headers[ERROR_HEADER]

    saved = call(h, "GET", "/vplatform")
    assert saved["vplatform"]["vnetworks"]["left"]["vroutes"]["10.162.0.0/24"]["gateway"]
    call(h, "DELETE", "/pnodes")
    assert call(h, "GET", "/vnodes") == {} and call(h, "GET", "/vnetworks") == {}
    loaded = call(h, "POST", "/vplatform", format="JSON", data=json.dumps(saved), rootfs=None)
    nets = loaded["vplatform"]["vnetworks"]
    assert nets["left"]["vroutes"] == saved["vplatform"]["vnetworks"]["left"]["vroutes"]
    assert nets["right"]["vroutes"] == saved["vplatform"]["vnetworks"]["right"]["vroutes"]
    vnodes = loaded["vplatform"]["vnodes"]
    assert {n: (v["status"], v["mode"]) for n, v in vnodes.items()} == {
        "a": ("RUNNING", "NORMAL"),
        "gw": ("RUNNING", "GATEWAY"),
        "b": ("RUNNING", "NORMAL"),
    }
    assert forwarding(h, "gw") == "1"
    assert run(h, "a", f"ping -c1 -W2 {b_ip} >/dev/null && echo ok") == ["ok"]
    assert any("10.161.0.0/24 via" in line for line in run(h, "b", "ip route"))


def test_vnode_updates_and_viface_attach_detach(port: int, h: httpx.Client, image: Path) -> None:
    """What ``PUT /vnodes/:v`` (type=update) and ``PUT /vnodes/:v/ifaces/:i`` change on a
    vnode not built yet, the Distem errors while it runs, the vifaces of a stopped one."""
    d = python_distem(port)
    d.pnode_init(["localhost"])
    d.vnetwork_create("vnet1", "10.163.0.0/24")
    d.vnetwork_create("vnet2", "10.164.0.0/24")
    d.vnode_create("x", {"vifaces": [{"name": "if0", "vnetwork": "vnet1"}]})
    hostname = os.uname().nodename
    v = call(h, "PUT", "/vnodes/x", desc={"host": hostname}, type="update")
    assert v["host"] == d.pnode_info("localhost")["address"]
    r = call(h, "PUT", "/vnodes/x", 400, desc={"host": "nowhere.invalid"}, type="update")
    assert r.headers[ERROR_HEADER].startswith("InvalidParameterError host:")
    fs = {"vfilesystem": {"image": str(image), "cow": "true"}}
    assert call(h, "PUT", "/vnodes/x", desc=fs, type="update")["vfilesystem"]["image"] == (
        f"file://{image}"
    )
    # a new name in vifaces creates the viface; a known one is updated
    v = call(h, "PUT", "/vnodes/x", desc={"vifaces": [{"name": "if1", "vnetwork": "vnet2"}]},
             type="update")  # fmt: skip
    assert [(i["name"], i["address"]) for i in v["vifaces"]] == [
        ("if0", "10.163.0.1/24"),
        ("if1", "10.164.0.1/24"),
    ]
    # python-distem's viface_update with an empty desc: detach
    bare = d.viface_update("x", "if1")
    assert (bare["address"], bare["vnetwork"], bare["macaddress"]) == ("0.0.0.0/0", None, None)
    # attach again, with an explicit address (no prefix) and traffic limits
    out = {"bandwidth": {"rate": "10mbps"}}
    vif = d.viface_update("x", "if1", {"address": "10.164.0.7", "output": out})
    assert (vif["address"], vif["vnetwork"], vif["output"]) == ("10.164.0.7/24", "vnet2", out)
    r = call(h, "PUT", "/vnodes/x/ifaces/if1", 400, desc={"vnetwork": "vnet1"})
    assert "vnet1" in r.headers[ERROR_HEADER]  # one viface per vnetwork, as Distem
    v = call(h, "PUT", "/vnodes/x", desc={"vifaces": [{"name": "if0"}]}, type="update")
    assert v["vifaces"][0]["address"] == "0.0.0.0/0"  # detached through the vnode desc
    key = {"public": "ssh-ed25519 AAAAtest x@y"}
    assert call(h, "PUT", "/vnodes/x", desc={"ssh_key": key}, type="update")["ssh_key"] == key
    # the unknown keys Distem ignores are ignored
    call(h, "PUT", "/vnodes/x", desc={"colour": "blue"}, type="update")
    # an empty desc creates an unattached viface
    loose = d.viface_create("x", "if2", {})
    assert (loose["address"], loose["vnetwork"]) == ("0.0.0.0/0", None)

    assert d.vnode_start("x")["status"] == "RUNNING"
    assert run(h, "x", "cat /root/.ssh/authorized_keys") == [key["public"]]
    r = call(h, "PUT", "/vnodes/x", 404, desc={"ssh_key": key}, type="update")
    assert r.headers[ERROR_HEADER].startswith("BusyResourceError")
    addresses = run(h, "x", "ip -o -4 addr show")
    assert any("if1" in line and "10.164.0.7/24" in line for line in addresses), addresses
    links = " ".join(run(h, "x", "ip -o link show"))
    assert " if1" in links and " if0" not in links and " if2" not in links, links
    # once built: Distem's busy resource (404) for what only an unbuilt vnode can change
    r = call(h, "PUT", "/vnodes/x/ifaces/if1", 404, desc={})
    assert r.headers[ERROR_HEADER].startswith("BusyResourceError")
    r = call(h, "PUT", "/vnodes/x", 404, desc={"host": "localhost"}, type="update")
    assert r.headers[ERROR_HEADER].startswith("BusyResourceError")
    # traffic still changes live
    vif = d.viface_update("x", "if1", {"output": {"bandwidth": {"rate": "5mbps"}}})
    assert vif["output"] == {"bandwidth": {"rate": "5mbps"}}
    # stopped: vifaces change again, and the next start rebuilds them
    d.vnode_stop("x")
    assert d.viface_update("x", "if1")["vnetwork"] is None
    assert d.viface_update("x", "if0", {"address": "10.163.0.9"})["address"] == "10.163.0.9/24"
    r = call(h, "PUT", "/vnodes/x", 404, desc={"host": "localhost"}, type="update")
    assert "fixed once it is built" in r.headers[ERROR_HEADER]
    assert d.vnode_start("x")["status"] == "RUNNING"
    addresses = run(h, "x", "ip -o -4 addr show")
    assert any("if0" in line and "10.163.0.9/24" in line for line in addresses), addresses
    assert not any("10.164.0.7" in line for line in addresses), addresses
    links = " ".join(run(h, "x", "ip -o link show"))
    assert " if0" in links and " if1" not in links, links


def test_wait_vnodes_polls_the_tcp_port(h: httpx.Client, image: Path) -> None:
    """``port`` given: open on the vnode's address or ``["false"]`` at the timeout. No
    port: Distem's 22, required only of vnodes whose image has an SSH server."""
    call(h, "POST", "/pnodes", target=["localhost"])
    call(h, "POST", "/vnetworks", name="vnet", address="10.165.0.0/24")
    desc = {
        "vfilesystem": {"image": str(image)},
        "vifaces": [{"name": "if0", "vnetwork": "vnet"}],
        "status": "RUNNING",
    }
    call(h, "POST", "/vnodes", names=["w1", "w2"], desc=desc, ssh_key={})
    start = time.monotonic()
    opts = {"vnodes": ["w1"], "timeout": 2, "port": 2222}
    assert call(h, "POST", "/wait_vnodes", opts=opts) == ["false"]
    assert time.monotonic() - start >= 2
    # a server in w1 on that port, bound to w1's address only
    run(h, "w1", "httpd -p 10.165.0.1:2222 -h /tmp && echo up")
    assert call(h, "POST", "/wait_vnodes", opts={**opts, "timeout": 30}) == ["true"]
    assert call(h, "POST", "/wait_vnodes", opts={**opts, "vnodes": ["w2"]}) == ["false"]
    r = call(h, "POST", "/wait_vnodes", 400, opts={"port": 70000})
    assert "opts.port" in r.headers[ERROR_HEADER]
    # no port: busybox has no SSH server, so answering a command is enough
    assert call(h, "POST", "/wait_vnodes", opts={"timeout": 30}) == ["true"]
    # an image with an sshd: port 22 must be open
    run(h, "w2", "mkdir -p /usr/sbin && printf '#!/bin/sh\\n' > /usr/sbin/sshd && echo ok")
    run(h, "w2", "chmod +x /usr/sbin/sshd && echo ok")
    assert call(h, "POST", "/wait_vnodes", opts={"vnodes": "w2", "timeout": 2}) == ["false"]
    run(h, "w2", "httpd -p 22 -h /tmp && echo up")
    assert call(h, "POST", "/wait_vnodes", opts={"vnodes": "w2", "timeout": 30}) == ["true"]


def test_vfilesystem_image_is_the_running_vnodes_root(
    port: int, h: httpx.Client, image: Path, tmp_path: Path
) -> None:
    """``GET /vnodes/:v/filesystem/image`` (and the native ``/rootfs``): a gzip tarball
    of the root the vnode sees, its own changes in, the pseudo filesystems left out."""
    call(h, "POST", "/pnodes", target=["localhost"])
    desc = {"vfilesystem": {"image": str(image), "shared": True}, "status": "RUNNING"}
    call(h, "POST", "/vnodes", names=["img1", "img2"], desc=desc, ssh_key={})
    run(h, "img1", "echo from-img1 > /root/result.txt && rm /etc/os-release && echo ok")
    r = h.get("/vnodes/img1/filesystem/image", headers=RUBY_HEADERS)
    assert r.status_code == 200, r.headers.get(ERROR_HEADER)
    assert r.headers["content-type"] == "application/gzip"
    (tmp_path / "img1.tgz").write_bytes(r.content)
    with tarfile.open(tmp_path / "img1.tgz") as tar:
        names = set(tar.getnames())
        assert tar.extractfile("./root/result.txt").read() == b"from-img1\n"  # type: ignore[union-attr]
        assert tar.extractfile("./etc/hostname").read() == b"img1\n"  # type: ignore[union-attr]
    assert "./etc/os-release" not in names, "a file the vnode removed is not in it"
    assert {"./bin/sh", "./proc", "./sys", "./dev"} <= names
    assert not [n for n in names if n.startswith(("./proc/", "./sys/", "./dev/"))]
    # the native route gives the same root (img2 untouched: the image's os-release)
    token = (tmp_path / "state" / "token").read_text().strip()
    r = h.get("/api/v1/vnodes/img2/rootfs", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    (tmp_path / "img2.tgz").write_bytes(r.content)
    with tarfile.open(tmp_path / "img2.tgz") as tar:
        assert "./etc/os-release" in tar.getnames()
        assert "./root/result.txt" not in tar.getnames()
    # distem --get-image, over Distem's wire and natively (the token from the environment)
    distem = [str(Path(sys.executable).with_name("distem"))]
    where = ["--coordinator", f"host=127.0.0.1,port={port}"]
    for mode, env in (("wire", {}), ("native", {"PYDISTEM_TOKEN": token})):
        dest = tmp_path / mode
        dest.mkdir()
        wire = ["--distem-wire"] if mode == "wire" else []
        argv = [*distem, *wire, *where, "--get-image", f"vnode=img1,dest={dest}"]
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, env={**os.environ, **env}
        )
        assert out.returncode == 0, (mode, out.stdout, out.stderr)
        with tarfile.open(dest / "img1.tgz") as tar:
            assert "./root/result.txt" in tar.getnames()
    call(h, "PUT", "/vnodes/img1", type="stop")
    r = call(h, "GET", "/vnodes/img1/filesystem/image", 404)
    assert r.headers[ERROR_HEADER].startswith("BusyResourceError")
    assert (
        call(h, "GET", "/vnodes/nope/filesystem/image", 404)
        .headers[ERROR_HEADER]
        .startswith("ResourceNotFoundError")
    )
    assert not list(Path("/tmp").glob("pydistem-rootfs-*")), "temporary copies are removed"


def test_rootfs_archive_over_the_agent_http_link(
    kernel_unchanged: object, image: Path, tmp_path: Path
) -> None:
    """A vnode on another pnode: the coordinator's HttpAgentLink streams the agent's
    tarball (an agent-only ``distemd``); an error comes back as ours, leaving no file.
    The port poll of ``wait_vnodes`` goes over the same link."""
    state = tmp_path / "agent"
    state.mkdir()
    agent_port = free_port()
    argv = [str(Path(sys.executable).with_name("distemd")), "--port", str(agent_port)]
    argv += ["--state-dir", str(state), "--tag", pydistem.testing.unique_tag()]
    with (state / "log").open("w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    link = None
    try:
        deadline = time.monotonic() + 30
        while not (state / "token").exists() or not _listening(agent_port):
            assert proc.poll() is None and time.monotonic() < deadline, (state / "log").read_text()
            time.sleep(0.1)
        token = (state / "token").read_text().strip()
        link = HttpAgentLink("p2", f"http://127.0.0.1:{agent_port}", token)
        vnode = VNode(name="far", image=str(image))
        assert link.vnodes_start([vnode]) == {"far": None}
        dest = tmp_path / "far.tgz"
        link.vnode_rootfs_archive("far", dest)
        with tarfile.open(dest) as tar:
            assert tar.extractfile("./etc/hostname").read() == b"far\n"  # type: ignore[union-attr]
        # wait_vnodes' port poll over the same link (no viface: the vnode's loopback)
        assert link.vnodes_port_open(["far", "ghost"], 2222) == {"far": False, "ghost": False}
        assert link.vnode_execute("far", "httpd -p 2222 -h /tmp").exit_code == 0
        assert link.vnodes_port_open(["far"], 2222) == {"far": True}
        missing = tmp_path / "none.tgz"
        with pytest.raises(NotFound):
            link.vnode_rootfs_archive("ghost", missing)
        assert not missing.exists()
        assert not [p for p in state.iterdir() if p.name.startswith("rootfs-")]
    finally:
        if link is not None:
            link.clean()
            link.close()
        proc.terminate()
        proc.wait(timeout=20)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
