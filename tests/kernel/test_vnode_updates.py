"""The native side of what Distem's vnode updates map to, through ``pydistem.Client``
against a real ``distemd -d`` with LXC vnodes: ``vnode_mode`` (IPv4 forwarding in the
vnode), ``vnode_host``, ``viface_detach``/``viface_attach`` rebuilt at the next start,
and ``vfilesystem_image``.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from compat_daemon import distemd

from pydistem.client import Client
from pydistem.errors import Conflict, ValidationError

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.lxc,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("lxc-start") is None, reason="needs the lxc tools"),
]


@pytest.fixture
def cl(kernel_unchanged: object, tmp_path: Path) -> Iterator[Client]:
    with distemd(tmp_path / "state") as port:
        token = (tmp_path / "state" / "token").read_text().strip()
        with Client(f"http://127.0.0.1:{port}", token) as client:
            yield client


def test_mode_host_attach_detach_and_image(cl: Client, tmp_path: Path, image: Path) -> None:
    cl.pnode_init("localhost")
    cl.vnetwork_create("na", "10.166.0.0/24")
    cl.vnetwork_create("nb", "10.167.0.0/24")
    desc = {"vfilesystem": {"image": str(image)}, "vifaces": [{"name": "if0", "vnetwork": "na"}]}
    cl.vnode_create("u1", desc)
    assert cl.vnode_host("u1", "localhost")["host"] == "localhost"
    with pytest.raises(ValidationError, match="host"):
        cl.vnode_host("u1", "nowhere.invalid")
    assert cl.vnode_mode("u1")["mode"] == "GATEWAY"  # recorded before the build
    cl.viface_create("u1", "if1", {"vnetwork": "nb"})
    assert cl.vnode_ssh_key("u1", {"public": "ssh-ed25519 AAAAk u@h"})["ssh_key"]["public"]
    cl.vnode_start("u1")

    def sh(command: str) -> str:
        return str(cl.vnode_execute("u1", command).stdout.strip())

    assert sh("cat /proc/sys/net/ipv4/ip_forward") == "1"
    assert sh("cat /root/.ssh/authorized_keys") == "ssh-ed25519 AAAAk u@h"
    assert cl.vnode_mode("u1", gateway=False)["mode"] == "NORMAL"
    assert sh("cat /proc/sys/net/ipv4/ip_forward") == "0"
    with pytest.raises(Conflict):
        cl.viface_detach("u1", "if1")
    with pytest.raises(Conflict):
        cl.vnode_host("u1", "localhost")

    sh("echo kept > /root/mark")
    path = cl.vfilesystem_image("u1", tmp_path)
    assert path == tmp_path / "u1.tgz"
    with tarfile.open(path) as tar:
        assert tar.extractfile("./root/mark").read() == b"kept\n"  # type: ignore[union-attr]

    cl.vnode_stop("u1")
    with pytest.raises(Conflict):
        cl.vfilesystem_image("u1", tmp_path)
    assert cl.viface_detach("u1", "if1")["vnetwork"] is None
    moved = cl.viface_attach("u1", "if0", {"vnetwork": "na", "address": "10.166.0.50"})
    assert moved["address"] == "10.166.0.50"
    cl.vnode_start("u1")
    addresses = sh("ip -o -4 addr show")
    assert "10.166.0.50/24" in addresses and "10.167.0." not in addresses, addresses
    assert " if1" not in sh("ip -o link show")
    assert sh("cat /proc/sys/net/ipv4/ip_forward") == "0"  # NORMAL survives the restart
