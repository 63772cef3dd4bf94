"""Timed events on the real kernel: a netns platform deployed with an ``events:`` section,
played by the coordinator over real HTTP, driven by the Python client, the ``distem``
CLI and the PyPI ``distem`` client (Distem's compat routes).

Run 1 (from the platform file): n1's output bandwidth becomes 10 Mbit/s at t=1 s and
n2 fails at t=1.5 s -> the tc class rate on the ifb, n2 unreachable.
Run 2 (CLI + python-distem): n2 recovers, n1's viface goes down -> n2 running, n1's
link down, n1 cannot reach n2. Run 3 (client): n1's viface up -> n1 reaches n2.
The log gives planned vs applied times; the timing errors are printed.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
import yaml

from pydistem.agent.service import Agent
from pydistem.cli.main import main as distem_main
from pydistem.client import Client
from pydistem.coordinator.app import create_app
from pydistem.coordinator.service import Coordinator
from pydistem.model.units import parse_rate
from pydistem.plugins.limits.host import parse_cpu_list
from pydistem.plugins.shapers.plan import ifb_name

pytestmark = pytest.mark.kernel
TOKEN = "events-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(kernel_unchanged, coordinator: Coordinator) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """The coordinator app (native + Distem compat) on a real loopback port, in a thread."""
    port = _free_port()
    app = create_app(coordinator, TOKEN, distem_compat=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield port
    finally:
        coordinator.events.stop()
        server.should_exit = True
        thread.join(10)


def wait_log(client: Client, run: int, n: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        entries = client.events_log(run=run)
        if len(entries) >= n:
            return entries
        assert time.monotonic() < deadline, f"run {run}: {len(entries)}/{n} applied: {entries}"
        time.sleep(0.05)


def htb_rates(dev: str) -> list[int]:
    """Rates (bit/s) of the HTB classes on ``dev``, as the kernel reports them."""
    out = subprocess.run(
        ["tc", "class", "show", "dev", dev], capture_output=True, text=True, check=True
    ).stdout
    return [int(parse_rate("rate", r)) for r in re.findall(r"^class htb .* rate (\S+)", out, re.M)]


def cgroup_file(group: str, name: str) -> str:
    """A file of the vnode's cgroup, on cgroup v1 (one tree per controller) or v2."""
    root = Path("/sys/fs/cgroup")
    for d in [root / group, *root.glob(f"*/{group}")]:
        if (d / name).exists():
            return (d / name).read_text().strip()
    raise AssertionError(f"no {name} in a cgroup {group}")


def cpu_share(group: str) -> float:
    """CFS quota / period / cores in the cpuset: the speed of each core, 1.0 = unlimited."""
    n = len(parse_cpu_list(cgroup_file(group, "cpuset.cpus")))
    try:
        quota, period = cgroup_file(group, "cpu.max").split()
    except AssertionError:
        quota = cgroup_file(group, "cpu.cfs_quota_us")
        period = cgroup_file(group, "cpu.cfs_period_us")
    if quota in ("max", "-1"):
        return 1.0
    return int(quota) / int(period) / n


def memory_limit(group: str) -> int:
    try:
        text = cgroup_file(group, "memory.max")
    except AssertionError:
        text = cgroup_file(group, "memory.limit_in_bytes")
    return 2**63 if text == "max" else int(text)


def link_is_up(dev: str) -> bool:
    out = subprocess.run(
        ["ip", "-j", "link", "show", "dev", dev], capture_output=True, text=True, check=True
    ).stdout
    return "UP" in json.loads(out)[0]["flags"]


def reaches(client: Client, src: str, ip: str) -> bool:
    return client.vnode_execute(src, ["ping", "-c1", "-W1", ip], timeout=10).exit_code == 0


def cli(port: int, *argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    rc = distem_main(["--coordinator", f"127.0.0.1:{port}", *argv])
    captured = capsys.readouterr()
    assert rc == 0, captured
    return captured.out + captured.err


def test_timed_events_on_the_kernel(
    served: int,
    coordinator: Coordinator,
    agent: Agent,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = served
    monkeypatch.setenv("PYDISTEM_TOKEN", TOKEN)
    platform = {
        "vnetworks": [{"name": "net", "address": "10.144.0.0/24"}],
        "vnodes": [
            {"name": "n[1-2]", "runtime": "netns", "vifaces": [{"name": "if0", "vnetwork": "net"}]}
        ],
        "events": [
            {"at": "1s", "action": "traffic", "vnode": "n1", "viface": "if0",
             "direction": "output", "bandwidth": "10mbit"},
            {"at": "1.5s", "action": "stop", "vnode": "n2"},
            {"at": "1.2s", "action": "cpu", "vnode": "n1", "cpu": {"frequency": 0.5, "cores": 1}},
            {"at": "1.2s", "action": "memory", "vnode": "n1", "memory": "64MiB"},
        ],
    }  # fmt: skip
    logs: list[dict] = []
    with Client(f"http://127.0.0.1:{port}", token=TOKEN) as client:
        # bad input at the edge: nothing deployed, nothing scheduled
        bad = {**platform, "events": [{"at": "1s", "action": "stop", "vnode": "n7"}]}
        with pytest.raises(Exception, match="unknown vnode") as exc:
            client.platform_deploy(bad)
        assert getattr(exc.value, "field", None) == "events[0].vnode"
        assert client.vnodes_info() == [] and client.events_info()["events"] == []

        client.platform_deploy(platform)
        assert client.wait_vnodes(timeout=30)
        n2_ip = client.vnode_info("n2")["vifaces"][0]["address"]
        assert reaches(client, "n1", n2_ip)
        host_n1 = agent.veth_name("n1", "if0")
        assert not _exists(ifb_name(host_n1)), "n1's output is shaped before any event"

        # ---- run 1: from the platform file
        listed = [e["action"] for e in client.events_info()["events"]]
        assert listed == ["traffic", "cpu", "memory", "stop"]
        cg = agent.netns_name("n1")
        assert cpu_share(cg) == 1.0 and memory_limit(cg) > 2**40  # no limits yet
        assert client.events_start()["run"] == 1
        logs += wait_log(client, 1, 4)
        assert all(e["ok"] for e in logs), logs
        assert 10_000_000 in htb_rates(ifb_name(host_n1)), "no 10 Mbit/s HTB class on the ifb"
        assert cpu_share(cg) == pytest.approx(0.5), "the CFS quota is not half a core"
        assert memory_limit(cg) == 64 * 2**20
        assert client.vnode_info("n2")["status"] == "DOWN"
        assert not reaches(client, "n1", n2_ip)

        # ---- run 2: the CLI adds a viface failure, python-distem a Distem churn trace
        cli(port, "events", "clear", capsys=capsys)
        events_file = tmp_path / "events.yaml"
        events_file.write_text(
            yaml.safe_dump([{"at": "600ms", "action": "viface_down", "vnode": "n1",
                             "viface": "if0"}])
        )  # fmt: skip
        assert "1 event(s) scheduled" in cli(port, "events", "add", str(events_file), capsys=capsys)
        distem = pytest.importorskip("distem")
        d = distem.Distem(serveraddr="127.0.0.1", port=port)
        d.proxies = {}
        d.client.trust_env = False
        resource = {"type": "vnode", "vnodename": "n2"}
        assert (
            d.post_json(
                "/events/trace",
                {"resource": resource, "event_type": "churn", "trace": {"0.3": "up"}},
            )
            == ""
        )
        assert d.post_json("/eventmanager", {}) == ""  # event_manager_start
        logs += wait_log(client, 2, 2)
        run2 = {e["action"]: e for e in client.events_log(run=2)}
        assert run2["start"]["ok"] and run2["viface_down"]["ok"], run2
        assert client.vnode_info("n2")["status"] == "RUNNING"
        assert not link_is_up(host_n1)
        assert not reaches(client, "n1", n2_ip)
        assert d.delete_json("/eventmanager", {}) == ""  # event_manager_stop: stops and clears
        assert client.events_info()["events"] == []

        # ---- run 3: the Python client brings the link back
        client.events_add([{"at": "200ms", "action": "viface_up", "vnode": "n1", "viface": "if0"}])
        client.event_manager_start()
        logs += wait_log(client, 3, 1)
        assert link_is_up(host_n1)
        assert reaches(client, "n1", n2_ip)

        table = cli(port, "events", "log", capsys=capsys)
        assert "viface_up" in table and "planned" in table

        # the CLI's other sources: a Distem trace file, churn (same seed, same schedule)
        cli(port, "events", "clear", capsys=capsys)
        trace = tmp_path / "bw.trace"
        trace.write_text("# seconds value\n1 10\n2.5 20mbit\n")
        cli(port, "events", "trace", str(trace), "--vnode", "n1", "--viface", "if0",
            "--direction", "output", "--type", "bandwidth", capsys=capsys)  # fmt: skip
        churn = ["events", "churn", "n[1-2]", "--rate", "0.2", "--downtime", "2s", "--seed", "9",
                 "--until", "60s"]  # fmt: skip
        cli(port, *churn, capsys=capsys)
        listed = json.loads(cli(port, "--json", "events", "list", capsys=capsys))["events"]
        assert [e["traffic"] for e in listed if e["action"] == "traffic"] == [
            {"bandwidth": "10mbps"},
            {"bandwidth": "20mbit"},
        ]
        first = [(e["at"], e["action"], e["vnode"]) for e in listed if e["action"] != "traffic"]
        cli(port, "events", "clear", capsys=capsys)
        cli(port, *churn, capsys=capsys)
        again = json.loads(cli(port, "--json", "events", "list", capsys=capsys))["events"]
        assert [(e["at"], e["action"], e["vnode"]) for e in again] == first and len(first) > 4

    delays = [e["delay"] for e in logs]
    print("\nevent log (run, planned s, applied s, timing error ms, action, target):")
    for e in logs:
        print(f"  {e['run']} {e['planned']:6.3f} {e['applied']:8.4f} {e['delay'] * 1000:+8.2f} "
              f"{e['action']:12} {e['target']}")  # fmt: skip
    mean = sum(delays) / len(delays)
    print(f"timing error: max {max(delays) * 1000:.2f} ms, mean {mean * 1000:.2f} ms")
    assert all(d >= 0 for d in delays), "an event was applied before its time"
    assert max(delays) < 5, "an event was applied seconds late"


def _exists(dev: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", dev], capture_output=True).returncode == 0
