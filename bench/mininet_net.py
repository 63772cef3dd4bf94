"""Mininet 2.3: the same topology as pydistem's, driven through Mininet's Python API.

N hosts (Mininet's bare hosts: a bash shell in a network namespace, made by mnexec)
plus a probe host, all linked to one Linux bridge (``--switch lxbr``: LinuxBridge,
STP off), no controller. With ``--shaped``, TCLink with ``bw`` on every link, which
Mininet applies as an HTB tree on both ends (both directions), as pydistem limits
both directions of every viface. Up = from ``Mininet()`` to every host answering the
probe's ICMP echo (probe.py); teardown = ``net.stop()``.

Run it with Debian's system python3 (Mininet's package is Debian's):

    /usr/bin/python3 bench/mininet_net.py N [--shaped]   (one BENCH-RESULT line)

It never runs ``mn -c``: that cleanup kills and deletes by name pattern, machine-wide.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    BANDWIDTH_MBIT,
    MININET_SYSCTLS,
    PREFIXLEN,
    Stopwatch,
    emit,
    probe_address,
    raised_sysctls,
    sysctls_kept,
    vnode_addresses,
    wait_links_gone,
)
from probe import ping_all


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int)
    p.add_argument("--shaped", action="store_true")
    args = p.parse_args(argv)

    from mininet.link import Link, TCLink
    from mininet.log import setLogLevel
    from mininet.net import VERSION, Mininet
    from mininet.nodelib import LinuxBridge

    setLogLevel("error")
    # each host holds a pty and pipes: 1000 hosts need more than the default 1024 fds
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    switch_name = f"mb{random.randint(1000, 9999)}"  # names its ports: unique per run
    addresses = vnode_addresses(args.n)
    result: dict = {
        "tool": "mininet",
        "runtime": "host",
        "n": args.n,
        "shaped": args.shaped,
        "version": VERSION,
    }
    link_opts = {"bw": BANDWIDTH_MBIT} if args.shaped else {}
    net = None
    with sysctls_kept(MININET_SYSCTLS), raised_sysctls(args.n + 1):
        try:
            with Stopwatch() as up:
                net = Mininet(
                    topo=None,
                    switch=LinuxBridge,
                    controller=None,
                    link=TCLink if args.shaped else Link,
                    build=False,
                )
                switch = net.addSwitch(switch_name)
                hosts = []
                for i, address in enumerate([*addresses, probe_address()]):
                    host = net.addHost(f"h{i}", ip=f"{address}/{PREFIXLEN}")
                    net.addLink(host, switch, **link_opts)
                    hosts.append(host)
                net.build()
                net.start()
                probe = ping_all(f"/proc/{hosts[-1].pid}/ns/net", addresses)
            result.update(up_s=up.seconds, probe=probe)
        finally:
            if net is not None:
                with Stopwatch() as down:
                    net.stop()
                    wait_links_gone(f"{switch_name}-")
                result["teardown_s"] = down.seconds
    emit(result)
    return 0 if not result["probe"]["missing"] else 1


if __name__ == "__main__":
    sys.exit(main())
