"""The agent's hand-packed address dump (rtnl.Rtnl.ipv4_addresses) against iproute2."""

from __future__ import annotations

import secrets
import subprocess

from pydistem.agent import netlink, rtnl


def test_ipv4_addresses_match_ip_addr_in_a_fresh_namespace() -> None:
    name = f"pdt{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:

        def ip(*args: str) -> None:
            subprocess.run(["ip", "-n", name, *args], check=True)

        ip("link", "add", "dum0", "type", "veth", "peer", "name", "dum1")
        ip("addr", "add", "10.77.0.1/24", "dev", "dum0")
        ip("addr", "add", "10.77.0.2/24", "dev", "dum0")  # a secondary address
        ip("addr", "add", "10.78.0.1/16", "dev", "dum0", "label", "dum0:x")
        ip("addr", "add", "fd00::1/64", "dev", "dum0")  # IPv6: not listed
        ip("link", "set", "lo", "up")
        with netlink.in_netns(f"/run/netns/{name}"), rtnl.Rtnl() as nl:
            found = nl.ipv4_addresses()
        out = subprocess.run(
            ["ip", "-n", name, "-4", "-o", "addr"], capture_output=True, text=True, check=True
        ).stdout
        expected = [line.split()[3].split("/")[0] for line in out.splitlines()]
        assert sorted(found) == sorted(expected)
        assert set(found) == {"127.0.0.1", "10.77.0.1", "10.77.0.2", "10.78.0.1"}
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
