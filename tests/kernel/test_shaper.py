"""HtbShaper on the real kernel: bandwidth caps measured with iperf3 between two netns.

Vnode A (netns pdtna) and B (pdtnb) hang off bridge pdtbr through veth pairs whose host
ends (pdtva, pdtvb) stay in this netns, as the agent builds them; A's viface is shaped.
Every object is named pdt* and removed in ``finally``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyroute2 import IPRoute, netns

from pydistem.agent.journal import Journal
from pydistem.errors import Unsupported
from pydistem.model.specs import Traffic
from pydistem.plugins.shapers.htb import HtbShaper
from pydistem.plugins.shapers.plan import ifb_name

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, veth, tc)"),
    pytest.mark.skipif(
        shutil.which("iperf3") is None, reason="iperf3 missing (apt-get install iperf3)"
    ),
]

A_IP, B_IP = "10.250.7.1", "10.250.7.2"
#: TCP goodput / wire rate: 1448 B of payload per 1514 B frame (MSS with timestamps).
#: HTB counts whole Ethernet frames, iperf3 reports payload.
GOODPUT = 1448 / 1514
TOLERANCE = 0.05


@dataclass
class Topo:
    host_a: str
    host_b: str
    ns_a: str
    ns_b: str
    journal: Journal
    shaper: HtbShaper


def _nsexec(ns: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, text=True,
                          capture_output=True, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def topo(tmp_path_factory) -> Iterator[Topo]:
    tag = f"{os.getpid() % 0xFFFF:x}"
    ns_a, ns_b, br = f"pdtna{tag}", f"pdtnb{tag}", f"pdtbr{tag}"
    host_a, host_b = f"pdtva{tag}", f"pdtvb{tag}"
    journal = Journal(tmp_path_factory.mktemp("shaper") / "journal")
    shaper = HtbShaper(ifb_prefix="pdti")
    server = None
    ipr = IPRoute()
    try:
        for ns in (ns_a, ns_b):
            netns.create(ns)
        ipr.link("add", ifname=br, kind="bridge")
        ipr.link("set", index=ipr.link_lookup(ifname=br)[0], state="up")
        for host, ns, ip in ((host_a, ns_a, A_IP), (host_b, ns_b, B_IP)):
            ipr.link("add", ifname=host, kind="veth", peer="pdtif0")
            peer = ipr.link_lookup(ifname="pdtif0")[0]
            ipr.link("set", index=peer, net_ns_fd=ns)
            idx = ipr.link_lookup(ifname=host)[0]
            ipr.link("set", index=idx, master=ipr.link_lookup(ifname=br)[0], state="up")
            with IPRoute(netns=ns) as inner:
                i = inner.link_lookup(ifname="pdtif0")[0]
                inner.link("set", index=i, ifname="if0", state="up")
                inner.addr("add", index=i, address=ip, prefixlen=24)
                inner.link("set", index=inner.link_lookup(ifname="lo")[0], state="up")
        server = subprocess.Popen(["ip", "netns", "exec", ns_b, "iperf3", "-s"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        _nsexec(ns_a, "ping", "-c", "1", "-W", "5", B_IP)
        time.sleep(0.5)  # let iperf3 listen
        yield Topo(host_a, host_b, ns_a, ns_b, journal, shaper)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        try:
            shaper.clear(host_a, journal)
        finally:
            for name in (host_a, host_b, br, ifb_name(host_a, "pdti")):
                for idx in ipr.link_lookup(ifname=name):
                    ipr.link("del", index=idx)
            for ns in (ns_a, ns_b):
                if ns in netns.listnetns():
                    netns.remove(ns)
            ipr.close()
            journal.close()


def iperf(topo: Topo, direction: str, seconds: int = 3) -> float:
    """Goodput in bit/s of one TCP stream: ``output`` = A sends, ``input`` = A receives."""
    argv = ["iperf3", "-c", B_IP, "-t", str(seconds), "-O", "1", "-J"]
    if direction == "input":
        argv.append("-R")
    out = json.loads(_nsexec(topo.ns_a, *argv, timeout=seconds + 30).stdout)
    return float(out["end"]["sum_received"]["bits_per_second"])


def assert_rate(topo: Topo, direction: str, mbit: float) -> float:
    """Measure (twice at most, for noise) and check the goodput against the cap."""
    want = mbit * 1e6 * GOODPUT
    seconds = 4 if mbit < 5 else 3  # slow links need a little longer to settle
    got = iperf(topo, direction, seconds)
    if abs(got - want) > TOLERANCE * want:
        got = iperf(topo, direction, seconds)
    print(f"{direction} cap {mbit} Mbit/s: {got / 1e6:.3f} Mbit/s goodput, "
          f"{got / GOODPUT / 1e6:.3f} on the wire")  # fmt: skip
    assert abs(got - want) <= TOLERANCE * want, (direction, mbit, got)
    return got


def tc_state(topo: Topo) -> str:
    ifb = ifb_name(topo.host_a, "pdti")
    cmds = [f"tc qdisc show dev {topo.host_a}", f"tc class show dev {topo.host_a}",
            f"tc filter show dev {topo.host_a} ingress", f"ip -br link show dev {ifb}",
            f"tc qdisc show dev {ifb}", f"tc class show dev {ifb}"]  # fmt: skip
    return "\n".join(subprocess.run(c, shell=True, capture_output=True, text=True).stdout
                     for c in cmds)  # fmt: skip


def test_probe_is_real_and_cached(topo):
    first = topo.shaper.probe()
    assert first["sch_htb"] and first["ifb"] and first["act_mirred"] and first["cls_u32"]
    t0 = time.perf_counter()
    assert topo.shaper.probe() == first
    assert time.perf_counter() - t0 < 0.01
    assert not any(n.startswith("pdp") for n in netns.listnetns())


@pytest.mark.parametrize("mbit", [1, 10, 100])
def test_input_cap(topo, mbit):
    topo.shaper.apply(topo.host_a, Traffic(bandwidth=f"{mbit}mbit"), None, topo.journal)
    assert_rate(topo, "input", mbit)
    assert not topo.journal.contains("link", ifb_name(topo.host_a, "pdti"))


@pytest.mark.parametrize("mbit", [1, 10, 100])
def test_output_cap(topo, mbit):
    topo.shaper.apply(topo.host_a, None, Traffic(bandwidth=f"{mbit}mbit"), topo.journal)
    assert_rate(topo, "output", mbit)
    ifb = ifb_name(topo.host_a, "pdti")
    assert topo.journal.contains("link", ifb)
    with IPRoute() as ipr:
        assert ipr.link_lookup(ifname=ifb)


def test_live_change_both_directions_then_clear(topo):
    s, j = topo.shaper, topo.journal
    s.apply(topo.host_a, Traffic(bandwidth="20mbit"), Traffic(bandwidth="5mbit"), j)
    assert_rate(topo, "input", 20)
    assert_rate(topo, "output", 5)
    # change while an iperf3 stream is flowing through the shaped link
    stream = subprocess.Popen(["ip", "netns", "exec", topo.ns_a, "iperf3", "-c", B_IP, "-t", "3",
                               "-J", "-p", "5201"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(1)
        s.apply(topo.host_a, Traffic(bandwidth="40mbit"), Traffic(bandwidth="10mbit"), j)
        s.apply(topo.host_a, Traffic(bandwidth="40mbit"), Traffic(bandwidth="10mbit"), j)  # again
    finally:
        out, _ = stream.communicate(timeout=30)
    assert json.loads(out)["end"]["sum_received"]["bits_per_second"] > 0
    assert_rate(topo, "input", 40)
    assert_rate(topo, "output", 10)
    s.clear(topo.host_a, j)
    s.clear(topo.host_a, j)  # idempotent
    state = tc_state(topo)
    assert "htb" not in state and "ingress" not in state and "pdti" not in state, state
    assert not j.live()
    assert iperf(topo, "output", 2) > 300e6  # unshaped again


def test_netem_is_unsupported_here_and_changes_nothing(topo):
    if topo.shaper.probe()["sch_netem"]:
        pytest.skip("this kernel has sch_netem: the Unsupported path cannot be shown")
    s, j = topo.shaper, topo.journal
    s.apply(topo.host_a, Traffic(bandwidth="10mbit"), Traffic(bandwidth="5mbit"), j)
    before, live = tc_state(topo), j.live()
    for inp, outp in (
        (Traffic(bandwidth="10mbit", latency="20ms"), None),
        (None, Traffic(loss="1%")),
        (Traffic(bandwidth="1mbit"), Traffic(bandwidth="1mbit", jitter="1ms", latency="2ms")),
    ):
        with pytest.raises(Unsupported, match=r"sch_netem.*" + os.uname().release):
            s.apply(topo.host_a, inp, outp, j)
    with pytest.raises(Unsupported, match="sch_netem"):
        s.apply_peer_latencies(topo.host_a, {B_IP: "10ms"}, j)
    assert tc_state(topo) == before
    assert j.live() == live
    s.clear(topo.host_a, j)


def test_journal_survives_for_the_agent_cleaner(topo, tmp_path):
    """The ifb is journaled as kind "link" (id = name) BEFORE it exists."""
    j = Journal(Path(tmp_path) / "j")
    topo.shaper.apply(topo.host_a, None, Traffic(bandwidth="10mbit"), j)
    [entry] = j.live()
    assert (entry.kind, entry.id, entry.data["type"]) == ("link", ifb_name(topo.host_a, "pdti"),
                                                          "ifb")  # fmt: skip
    assert Journal(Path(tmp_path) / "j").live() == [entry]  # on disk
    topo.shaper.clear(topo.host_a, j)
    assert j.live() == []
    assert topo.shaper.cleaners() == {}
