"""Pnode probes as data: the probe model (Distem's desc too), the /proc readers, and the
sampling threads against a /proc tree the test writes (frequency, stop, restart,
delete, rates). The real /proc and real traffic: tests/kernel/test_probes_kernel.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pydistem.agent import probes as ap
from pydistem.errors import NotFound, ValidationError
from pydistem.model.probes import Probe, parse_probes

NET_DEV = """Inter-|   Receive  |  Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo
    lo: {rx} 10 0 0 0 0 0 0 {tx} 10 0 0 0 0 0 0
  eth0: 99  1 0 0 0 0 0 0  77 1 0 0 0 0 0 0
"""
ROUTE = "Iface\tDestination\tGateway\nveth9\t000AA8C0\t00000000\neth0\t00000000\t010200C0\n"


def test_probe_model_and_distem_desc() -> None:
    (bw,) = parse_probes({"ProbeBW": {"frequency": 2, "name": "net", "interface": "eth0"}})
    assert (bw.type, bw.frequency, bw.name, bw.interface) == ("bw", 2.0, "net", "eth0")
    (bw,) = parse_probes({"bw": {"frequency": "1"}})  # WIRE_CAPTURE's vector
    assert bw.name == "bw" and bw.interface is None
    two = parse_probes([{"type": "loadavg"}, {"type": "cpu", "frequency": 0.5}])
    assert [p.name for p in two] == ["loadavg", "cpu"]


@pytest.mark.parametrize(
    ("desc", "field"),
    [
        ({"ProbeDisk": {"frequency": 1}}, "probes.ProbeDisk.type"),
        ({"bw": {"frequency": 0}}, "probes.bw.frequency"),
        ({"bw": {"frequency": "often"}}, "probes.bw.frequency"),
        ({"bw": "fast"}, "probes.bw"),
        ([{"type": "loadavg", "interface": "eth0"}], "probes[0].interface"),
        ([{"type": "cpu"}, {"type": "cpu"}], "probes[1].name"),
        ([], "probes"),
        ("bw", "probes"),
    ],
)
def test_bad_probes_name_the_field(desc: object, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_probes(desc)
    assert err.value.field == field


def test_readers() -> None:
    assert ap.net_dev(NET_DEV.format(rx=100, tx=200), "lo") == (100.0, 200.0)
    assert ap.net_dev(NET_DEV.format(rx=1, tx=2), "eth0") == (99.0, 77.0)
    with pytest.raises(ValidationError, match="eth9: no such interface"):
        ap.net_dev(NET_DEV.format(rx=1, tx=2), "eth9")
    assert ap.loadavg("0.50 0.25 0.10 1/100 42\n") == [0.5, 0.25, 0.1]
    busy, total = ap.cpu_times("cpu  10 0 10 70 10 0 0 0 0 0\ncpu0 1 2 3 4 5\n")
    assert (busy, total) == (20.0, 100.0)
    meminfo = "MemTotal:  2048000 kB\nMemFree: 100 kB\nMemAvailable: 1024000 kB\n"
    assert ap.meminfo(meminfo) == [1000.0, 1000.0]
    assert ap.default_interface(ROUTE) == "eth0"
    with pytest.raises(ValidationError, match="no default route"):
        ap.default_interface("Iface\tDestination\n")


def fake_proc(root: Path, rx: int = 0, tx: int = 0) -> Path:
    (root / "net").mkdir(parents=True, exist_ok=True)
    (root / "net" / "dev").write_text(NET_DEV.format(rx=rx, tx=tx))
    (root / "net" / "route").write_text(ROUTE)
    (root / "loadavg").write_text("0.50 0.25 0.10 1/100 42\n")
    return root


def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_sampling_stop_restart_delete(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    ps = ap.ProbeSet(proc=proc)
    try:
        ps.launch([Probe(type="loadavg", frequency=50)], ref_time=time.time() + 1000)
        wait_for(lambda: len(ps.data()["loadavg"]) >= 10)
        t, values = ps.data()["loadavg"][0]
        assert values == [0.5, 0.25, 0.1]
        assert t > time.time() + 990, "times are on the reference clock"
        ps.stop()
        frozen = len(ps.data()["loadavg"])
        time.sleep(0.1)
        assert len(ps.data()["loadavg"]) == frozen and not ps.running()
        ps.restart()
        wait_for(lambda: len(ps.data()["loadavg"]) >= frozen + 5)
        ps.delete()
        assert ps.data() == {} and not ps.running()
        with pytest.raises(NotFound):
            ps.restart()
    finally:
        ps.delete()


def test_frequency_and_bw_rates(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, rx=1000, tx=0)
    ps = ap.ProbeSet(proc=proc)
    try:
        with pytest.raises(ValidationError, match="eth9"):
            ps.launch([Probe(type="bw", interface="eth9")])
        ps.launch(
            [Probe(type="bw", frequency=20, interface="lo"), Probe(type="loadavg", frequency=5)]
        )
        t0, rx = time.monotonic(), 1000
        while time.monotonic() - t0 < 1.0:  # lo receives 10 kB/s, sends nothing
            rx += 100
            (proc / "net" / "dev").write_text(NET_DEV.format(rx=rx, tx=0))
            time.sleep(0.01)
        ps.stop()
        data = ps.data()
        assert 3 <= len(data["loadavg"]) <= 6, "5 samples per second"
        rates = [v for _, v in data["bw"]]
        assert 15 <= len(rates) <= 21
        assert all(tx == 0 for _, tx in rates)
        mean_rx = sum(r for r, _ in rates) / len(rates)
        assert 6000 < mean_rx < 12000, mean_rx
        # the default interface is that of the default route
        ps.launch([Probe(type="bw", frequency=1)])
        assert ps._probes[0].interface == "eth0"
    finally:
        ps.delete()
