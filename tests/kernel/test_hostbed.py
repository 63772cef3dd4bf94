"""The multi-host test bed itself: hosts on one LAN, each with sshd and its own hostname."""

from __future__ import annotations

import os
import threading

import pytest

pytestmark = pytest.mark.kernel


def test_hosts_reach_each_other_and_answer_ssh(kernel_unchanged, hostbed) -> None:
    # kernel_unchanged first: fixtures are torn down in reverse, so the bed is gone
    # before the snapshot is compared
    bed = hostbed(3, sshd=[0, 1])
    for host in bed.hosts[:2]:
        r = bed.operator_run(["ssh", *bed.ssh_options(), f"root@{host.address}", "hostname"])
        assert (r.returncode, r.stdout.strip()) == (0, host.name), r.stderr
    # no sshd on host3: refused, not hanging
    r = bed.operator_run(["ssh", *bed.ssh_options(), f"root@{bed.hosts[2].address}", "true"])
    assert r.returncode == 255 and "refused" in r.stderr
    r = bed.run(bed.hosts[0], ["ping", "-c1", "-W2", bed.hosts[2].address])
    assert r.returncode == 0, r.stdout
    # the machine's own namespace is not on the LAN
    r = bed.run(bed.hosts[0], ["ip", "route", "get", "10.199.0.254"])
    assert "eth0" in r.stdout
    bed.stop_sshd(bed.hosts[0])
    r = bed.operator_run(["ssh", *bed.ssh_options(), f"root@{bed.hosts[0].address}", "true"])
    assert r.returncode == 255


def test_operator_context_puts_this_thread_on_the_lan(hostbed) -> None:
    import socket

    bed = hostbed(1)
    with bed.operator():
        with socket.create_connection((bed.hosts[0].address, 22), timeout=5) as s:
            assert s.recv(64).startswith(b"SSH-2.0-")
        threaded = []
        t = threading.Thread(target=lambda: threaded.append(_netns_inode()))
        t.start()
        t.join()
        assert threaded == [_netns_inode()]  # threads started inside inherit the LAN
    assert _netns_inode() != threaded[0]  # and this thread is back home


def _netns_inode() -> int:
    return os.stat(f"/proc/self/task/{threading.get_native_id()}/ns/net").st_ino


def test_drop_foreign_macs_reproduces_a_non_promiscuous_nic(hostbed) -> None:
    bed = hostbed(2, sshd=False)
    a, b = bed.hosts
    # on b, a bridge with its own MAC enslaves eth0, as a classic vnetwork would
    for cmd in (
        ["ip", "link", "add", "br0", "address", "02:00:00:00:00:99", "type", "bridge"],
        ["ip", "addr", "flush", "dev", "eth0"],
        ["ip", "link", "set", "eth0", "master", "br0"],
        ["ip", "addr", "add", "10.199.0.100/24", "dev", "br0"],
        ["ip", "link", "set", "br0", "up"],
    ):
        assert bed.run(b, cmd).returncode == 0
    assert bed.run(a, ["ping", "-c1", "-W2", "10.199.0.100"]).returncode == 0
    bed.drop_foreign_macs(b)
    assert bed.run(a, ["ping", "-c2", "-W1", "10.199.0.100"]).returncode != 0


def test_ssh_sessions_see_the_cgroup_tree_and_etc_netns(hostbed, tmp_path) -> None:
    """LXC started over SSH needs /sys/fs/cgroup (which `ip netns exec` would hide), and
    a host's /etc/netns/<ns>/hosts is its /etc/hosts, as `ip netns exec` makes it."""
    from pathlib import Path

    bed = hostbed(1)
    (host,) = bed.hosts
    etc = Path("/etc/netns") / host.netns
    etc.mkdir(parents=True)
    try:
        (etc / "hosts").write_text("10.199.0.254 laptop.example\n")
        bed.stop_sshd(host)
        bed.start_sshd(host)
        r = bed.operator_run(
            ["ssh", *bed.ssh_options(), f"root@{host.address}",
             "ls /sys/fs/cgroup && getent hosts laptop.example"]
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "laptop.example" in r.stdout and r.stdout.split()[0]
    finally:
        import shutil

        shutil.rmtree(etc, ignore_errors=True)
    assert "laptop.example" not in Path("/etc/hosts").read_text()
