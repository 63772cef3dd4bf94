"""One platform over four hosts (tests/hostbed.py), driven from the ``distem`` CLI.

Each host of the bed runs a real ``distemd``: the coordinator (with its in-process
agent) on host1, pnode agents on host2..4, all with one token. The CLI runs on the
operator's machine. The test proves, with LXC vnodes:

- a classic vnetwork (``root_interface: eth0``, each host's uplink) and a VXLAN
  vnetwork, joined by a gateway vnode and ``vroutes: complete``, every vnode pinging
  every other;
- host4's NIC drops frames for foreign MACs (as a Xen/KVM virtual NIC): the probe says
  so, a classic vnode placed there is refused with the explanation, ``auto`` picks
  VXLAN, VXLAN vnodes run there;
- ``distem clean`` after host3's agent was killed reports host3, cleans the others, and
  host3's own journal (``distem clean`` on that host) removes what is left: nothing
  remains on any host, eth0 gets its address back.

The first test starts the daemons by hand (to kill one and keep its Popen);
``test_bootstrap_deploy_quit_forty_lxc_vnodes_from_the_cli`` does it all from the CLI:
``distem bootstrap`` over SSH, ``distem deploy``, ``distem quit``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from pydistem.agent import sysctl
from pydistem.agent.journal import Journal

pytestmark = [pytest.mark.kernel, pytest.mark.lxc, pytest.mark.slow]

BIN = Path(sys.executable).parent
TOKEN = "multihost-test-token"
N_LAN, N_OVERLAY = 19, 20  # + the gateway: 40 vnodes


@dataclass
class Cluster:
    bed: Any
    states: list[Path]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def coordinator(self) -> str:
        return f"{self.bed.hosts[0].address}:4567"

    def cli(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``distem ARGS`` on the operator's machine."""
        cmd = [str(BIN / "distem"), "--coordinator", self.coordinator, *args]
        env = {**os.environ, "PYDISTEM_TOKEN": TOKEN, "NO_COLOR": "1", "COLUMNS": "200"}
        r = self.bed.operator_run(cmd, env=env, timeout=timeout)
        if check:
            assert r.returncode == 0, f"distem {' '.join(args)}: {r.stdout}\n{r.stderr}"
        return r

    def json(self, *args: str) -> Any:
        return json.loads(self.cli("--json", *args).stdout)

    def in_host(self, i: int, cmd: list[str]) -> str:
        r = self.bed.run(self.bed.hosts[i], cmd)
        assert r.returncode == 0, r.stderr
        return str(r.stdout)


@pytest.fixture
def host_limits(tmp_path: Path) -> Iterator[None]:
    """The neighbour table and backlog are host-wide and not visible from the hosts'
    namespaces: raised once here for every agent of the bed, restored afterwards."""
    journal = Journal(tmp_path / "limits.jsonl")
    sysctl.size_for_platform(["lan"] * (N_LAN + 1) + ["overlay"] * (N_OVERLAY + 1), journal)
    try:
        yield
    finally:
        for entry in reversed(journal.live("sysctl")):
            sysctl.clean_sysctl(entry)
        journal.close()


def _wait_health(bed: Any, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    with bed.operator():
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"distemd exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer: {log.read_text()[-2000:]}")


@pytest.fixture
def cluster(kernel_unchanged, host_limits, hostbed, tmp_path: Path) -> Iterator[Cluster]:
    bed = hostbed(4, sshd=False)
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    c = Cluster(bed, [tmp_path / f"state{i + 1}" for i in range(4)])
    try:
        for i, host in enumerate(bed.hosts):
            log = tmp_path / f"distemd{i + 1}.log"
            cmd = [
                *on_host(host), str(BIN / "distemd"),
                "--bind", host.address, "--state-dir", str(c.states[i]),
                "--token-file", str(token), "--tag", f"h{i + 1}",
            ]  # fmt: skip
            if i == 0:
                cmd.append("-d")
            with log.open("ab") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
            c.procs.append(proc)
            port, path = (4567, "/api/v1/health") if i == 0 else (4568, "/api/v1/agent/health")
            _wait_health(bed, f"http://{host.address}:{port}{path}", proc, log)
        yield c
    finally:
        # whatever happened: the coordinator's quit, then every host's own journal
        if c.procs and c.procs[0].poll() is None:
            c.cli("clean", check=False)
        for proc in c.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
        for i in range(len(bed.hosts)):
            if (c.states[i] / "agent" / "journal.jsonl").exists():
                local_clean(c, i)


def on_host(host: Any) -> list[str]:
    """Run in the host's network namespace only. Not ``ip netns exec``: it remounts
    /sys for the namespace, which hides the cgroup hierarchies LXC needs."""
    return ["nsenter", f"--net=/run/netns/{host.netns}"]


def local_clean(c: Cluster, i: int) -> subprocess.CompletedProcess[str]:
    """``distem clean`` on host ``i`` with no coordinator: from that agent's journal."""
    env = {**os.environ, "PYDISTEM_STATE_DIR": str(c.states[i])}
    cmd = [*on_host(c.bed.hosts[i]), str(BIN / "distem"), "--coordinator", "127.0.0.1:1", "clean"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


def pd_links(c: Cluster, i: int) -> list[str]:
    links = c.in_host(i, ["ip", "-br", "link"]).splitlines()
    return [ln.split()[0] for ln in links if ln.startswith("pd")]


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multihost.yaml"


def platform(image: Path) -> dict[str, Any]:
    """examples/multihost.yaml with this run's image, plus an ``auto`` vnetwork on eth0."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    for v in doc["vnodes"]:
        v["image"] = f"file://{image}"
    doc["vnetworks"].append({"name": "mixed", "address": "10.147.0.0/24", "root_interface": "eth0"})
    counts = {v["name"]: v for v in doc["vnodes"]}
    assert f"lan-[1-{N_LAN}]" in counts and f"ov-[1-{N_OVERLAY}]" in counts and "gw" in counts
    return doc


def test_forty_lxc_vnodes_over_four_hosts(cluster: Cluster, image: Path, tmp_path: Path) -> None:
    bed, hosts = cluster.bed, cluster.bed.hosts
    addresses = [h.address for h in hosts]
    pnodes = cluster.json("pnode", "init", *addresses)
    assert [p["address"] for p in pnodes] == addresses
    assert pnodes[0]["id"] == "localhost", "host1 is the coordinator's own pnode"

    # host4 behaves like a Xen guest: the probe finds it, and only it
    bed.drop_foreign_macs(hosts[3])
    probe = cluster.cli("--json", "pnode", "probe", "eth0", check=False)
    assert probe.returncode == 1, probe.stdout + probe.stderr
    faults = json.loads(probe.stdout)
    assert "drops frames for MAC addresses that are not its own" in faults.pop(addresses[3])
    assert faults == {"localhost": None, addresses[1]: None, addresses[2]: None}

    # a classic vnode placed on host4 is refused with the reason; nothing is built
    bad = platform(image)
    bad["vnodes"] = [{**bad["vnodes"][0], "name": "lan-x", "host": addresses[3]}]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    r = cluster.cli("deploy", str(tmp_path / "bad.yaml"), check=False)
    assert r.returncode == 2, r.stdout + r.stderr
    err = " ".join(r.stderr.split())
    assert "vnodes[0].host" in err and "no promiscuous mode" in err, err
    assert cluster.json("status")["vnodes"] == []

    # the platform: 40 LXC vnodes, classic + VXLAN + a gateway, every vnode pings every other
    (tmp_path / "platform.yaml").write_text(yaml.safe_dump(platform(image)))
    out = cluster.json("deploy", str(tmp_path / "platform.yaml"), "--timeout", "180")
    assert out["ready"], out
    vnodes = {v["name"]: v for v in out["vnodes"]}
    assert len(vnodes) == 40 and {v["status"] for v in vnodes.values()} == {"RUNNING"}
    ips = [i["address"] for v in vnodes.values() for i in v["vifaces"]]
    assert len(ips) == 41 and len(set(ips)) == 41, "addresses allocated once, platform-wide"
    # from .1 upward across the four hosts: the pool is the coordinator's, not a pnode's
    assert {i for i in ips if i.startswith("10.146.")} == {
        f"10.146.0.{k}" for k in range(1, N_OVERLAY + 2)
    }
    where = {n: v["host"] for n, v in vnodes.items()}
    assert set(where.values()) == {"localhost", *addresses[1:]}, "spread over the 4 hosts"
    lan_hosts = {where[n] for n in vnodes if n.startswith("lan") or n == "gw"}
    assert addresses[3] not in lan_hosts, "no classic vnode on the host without promisc"
    assert addresses[3] in {where[n] for n in vnodes if n.startswith("ov")}
    unreachable = {s: [d for d, ok in row.items() if not ok] for s, row in out["ping"].items()}
    unreachable = {s: d for s, d in unreachable.items() if d}
    assert len(out["ping"]) == 40 and all(len(row) == 40 for row in out["ping"].values())
    assert not unreachable, unreachable
    nets = {n["name"]: n for n in cluster.json("vnetwork", "list")}
    assert nets["mixed"]["network_type"] == "vxlan" and addresses[3] in nets["mixed"]["reason"]
    assert nets["overlay"]["vni"] != nets["mixed"]["vni"]
    # classic mode on host2: eth0 is a bridge port, its address on the bridge
    (eth0,) = json.loads(cluster.in_host(1, ["ip", "-j", "addr", "show", "eth0"]))
    assert eth0["master"].startswith("pdu")
    assert not [a for a in eth0["addr_info"] if a["family"] == "inet"], "moved to the bridge"

    # host3's agent dies; clean reports it and cleans the rest
    os.killpg(cluster.procs[2].pid, signal.SIGKILL)
    cluster.procs[2].wait(10)
    r = cluster.cli("clean", check=False)
    err = " ".join(r.stderr.split())
    assert r.returncode == 1 and f"pnode {addresses[2]} was not cleaned" in err, err
    for i in (0, 1, 3):
        assert pd_links(cluster, i) == [], f"host{i + 1}"
    # host3 still runs its vnodes; its own journal removes them
    assert pd_links(cluster, 2)
    r = local_clean(cluster, 2)
    assert r.returncode == 0, r.stdout + r.stderr
    for i in range(4):
        assert pd_links(cluster, i) == [], f"host{i + 1}"
        (eth0,) = json.loads(cluster.in_host(i, ["ip", "-j", "addr", "show", "eth0"]))
        assert "master" not in eth0
        assert [a["local"] for a in eth0["addr_info"] if a["family"] == "inet"] == [addresses[i]]


def test_bootstrap_deploy_quit_forty_lxc_vnodes_from_the_cli(
    kernel_unchanged, host_limits, hostbed, image: Path, tmp_path: Path
) -> None:
    """The issue's done criterion: ``distem bootstrap`` prepares four hosts over SSH (one
    of them drops frames for foreign MACs), ``distem deploy`` builds 40 LXC vnodes on a
    classic and a VXLAN vnetwork joined by a route, every vnode pings every other, and
    ``distem quit`` leaves nothing on any host."""
    from pydistem.testing import unique_tag

    bed = hostbed(4)
    hosts = bed.hosts
    addresses = [h.address for h in hosts]
    bed.drop_foreign_macs(hosts[3])
    machines = tmp_path / "machines"
    machines.write_text("".join(f"root@{a}\n" for a in addresses))
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PYDISTEM_BOOTSTRAP_FILE": str(tmp_path / "cfg" / "bootstrap.json"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    distem = [str(BIN / "distem")]
    r = bed.operator_run(
        [*distem, "bootstrap", "-f", str(machines), "--key", str(bed.key), "--venv", sys.prefix,
         "--state-dir", str(tmp_path / "state" / "{index}"), "--tag", unique_tag() + "{index}",
         "--timeout", "10"],
        env=env, timeout=600,
    )  # fmt: skip
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        # the summary: bootstrap's uplink probe found host4's NIC (the coordinator then
        # keeps classic vnodes off it without probing again)
        rows = {
            cells[1].strip(): line
            for line in r.stdout.splitlines()
            if len(cells := line.split("│")) > 2 and cells[1].strip()
        }
        assert all("eth0: classic ok" in rows[a] for a in addresses[:3]), r.stdout
        assert "eth0: drops foreign MACs (VXLAN only)" in rows[addresses[3]], r.stdout
        pids = [tmp_path / "state" / str(i + 1) / "distemd.pid" for i in range(4)]
        assert all(p.exists() for p in pids), "a distemd on every host"
        env["PYDISTEM_TOKEN"] = (tmp_path / "cfg" / "token").read_text().strip()
        coordinator = ["--coordinator", f"{addresses[0]}:4567"]

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return bed.operator_run([*distem, *coordinator, *args], env=env, timeout=600)

        (tmp_path / "platform.yaml").write_text(yaml.safe_dump(platform(image)))
        r = cli("--json", "deploy", str(tmp_path / "platform.yaml"), "--timeout", "180")
        assert r.returncode == 0, r.stdout + r.stderr
        out = json.loads(r.stdout)
        vnodes = {v["name"]: v for v in out["vnodes"]}
        assert len(vnodes) == 40 and {v["status"] for v in vnodes.values()} == {"RUNNING"}
        assert len({v["host"] for v in vnodes.values()}) == 4, "spread over the 4 hosts"
        lan_hosts = {v["host"] for n, v in vnodes.items() if n.startswith("lan") or n == "gw"}
        assert not {h for h in lan_hosts if addresses[3] in h}, "no classic vnode on host4"
        unreachable = {s: [d for d, ok in row.items() if not ok] for s, row in out["ping"].items()}
        assert len(out["ping"]) == 40 and not {s: d for s, d in unreachable.items() if d}
    finally:
        q = bed.operator_run([*distem, "quit", "--timeout", "10"], env=env, timeout=600)
    assert q.returncode == 0, q.stdout + q.stderr
    for i, host in enumerate(hosts):
        links = bed.run(host, ["ip", "-br", "link"]).stdout.splitlines()
        assert [ln for ln in links if ln.startswith("pd")] == [], f"host{i + 1}"
        (eth0,) = json.loads(bed.run(host, ["ip", "-j", "addr", "show", "eth0"]).stdout)
        assert "master" not in eth0, f"host{i + 1}: eth0 still enslaved"
        assert [a["local"] for a in eth0["addr_info"] if a["family"] == "inet"] == [addresses[i]]
        assert not (tmp_path / "state" / str(i + 1) / "distemd.pid").exists(), f"host{i + 1}"
