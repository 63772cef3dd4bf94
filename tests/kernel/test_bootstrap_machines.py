"""``distem bootstrap`` on machines unlike this one, for real, in a host bed:

- hosts that never had pydistem (an empty ``/opt`` in their view): bootstrap builds the
  wheel of this checkout, ships it with a wheelhouse of its dependencies (the hosts have
  no package index), creates the venv, and the distemds run from it;
- a host with an old iproute2 (a dpkg-installed 3.14.0-1 whose ``ip -V`` says
  ``ss140411``, in a copy-on-write view of /usr, /etc and /var) and an apt source with
  Debian's real iproute2 6.1.0-3: bootstrap upgrades it through apt-get and checks again;
- a host with the same old iproute2 and a suite with nothing newer, plus a backports
  suite (marked as Debian marks it) that has Debian's: upgraded with ``-t``;
- a host with the same old iproute2 and a suite with nothing newer: it fails at
  ``iproute2`` with the reason, and the others go on;
- a host whose uplink drops frames for foreign MACs: bootstrap's probe says so, the
  summary shows it, and the coordinator uses that verdict without probing again.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

import pydistem
from pydistem.bootstrap import BootstrapOptions, prepare, teardown
from pydistem.bootstrap.checks import parse_ip_version
from pydistem.bootstrap.install import WheelSource, source_root
from pydistem.cli.bootstrap import summary_table, uplink_cell
from pydistem.client import Client
from pydistem.errors import ValidationError
from pydistem.testing import unique_tag
from tests import debrepo

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

VENV = "/opt/pydistem/venv"  # the default: in each host's view, /opt starts empty
OLD = ("3.14.0-1", "ss140411")


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """Debian's iproute2 of this machine, the same aged to 3.14.0-1, and apt sources
    (``sources``: name -> sources.list lines) offering them."""
    if subprocess.run(["sh", "-c", "command -v dpkg-deb apt-get"], capture_output=True).returncode:
        pytest.skip("needs dpkg-deb and apt-get (a Debian machine)")
    version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "iproute2"], capture_output=True, text=True
    ).stdout.strip()
    d = tmp_path_factory.mktemp("debs")
    real = debrepo.download("iproute2", version, d / "real")
    old = debrepo.aged(real, d / "old", *OLD)
    # apt reads file: repositories as its sandbox user _apt: outside pytest's 0700 dirs
    repos = Path(tempfile.mkdtemp(prefix="pd-aptrepo-"))
    repos.chmod(0o755)
    debrepo.suite_repo(repos / "bp", "bookworm", [old], backports=False)
    debrepo.suite_repo(repos / "bp", "bookworm-backports", [real], backports=True)
    debrepo.suite_repo(repos / "old", "bookworm", [old], backports=False)
    trusted = "deb [trusted=yes] file:"
    try:
        yield {
            "real": real,
            "old": old,
            "sources": {
                "newer": f"{trusted}{debrepo.flat_repo(repos / 'newer', [real])} ./\n",
                "backports": f"{trusted}{repos / 'bp'} bookworm main\n"
                f"{trusted}{repos / 'bp'} bookworm-backports main\n",
                "nothing": f"{trusted}{repos / 'old'} bookworm main\n",
            },
        }
    finally:
        shutil.rmtree(repos)


@pytest.fixture(scope="module")
def built_wheel() -> Iterator[Path]:
    """This checkout's wheel, by bootstrap's own builder, built here and not on the bed's
    operator: that has no package index, which a build without this environment's build
    tools (an older venv than the test extra makes) needs."""
    source = WheelSource(None)
    try:
        yield source.get()
    finally:
        source.close()


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    """Wheels of pydistem's dependencies (not of pydistem: bootstrap builds that)."""
    d = tmp_path_factory.mktemp("wheelhouse")
    root = source_root()
    assert root, "these tests run from a source tree"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(d), root],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    for w in d.glob("pydistem-*.whl"):
        w.unlink()
    return d


def _sh(bed, host, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` on ``host`` over SSH: what the host's own view shows."""
    return bed.operator_run(
        ["ssh", *bed.ssh_options(), f"root@{host.address}", command], timeout=300
    )


def _old_iproute2(bed, host, packages, sources: str) -> None:
    """``host`` gets its own /usr, /etc, /var (copy-on-write) and an empty /opt, the old
    iproute2 installed there by dpkg, and ``packages["sources"][sources]`` as its only
    apt sources."""
    bed.private_view(host, overlay=["/usr", "/etc", "/var"], empty=["/opt"])
    lines = packages["sources"][sources]
    r = _sh(
        bed,
        host,
        "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* && "
        f"printf %s {shlex.quote(lines)} > /etc/apt/sources.list.d/test.list && "
        "DEBIAN_FRONTEND=noninteractive dpkg -i --force-downgrade "
        f"{shlex.quote(str(packages['old']))} >/dev/null",
    )
    assert r.returncode == 0, r.stderr
    assert _sh(bed, host, "ip -V").stdout.strip() == f"ip utility, iproute2-{OLD[1]}"


def test_fresh_hosts_old_iproute2_and_an_uplink_without_promiscuous_mode(
    kernel_unchanged, hostbed, tmp_path: Path, packages, built_wheel, wheelhouse
) -> None:
    bed = hostbed(5)
    h1, h2, h3, h4, h5 = bed.hosts
    bed.private_view(h1, empty=["/opt"])
    bed.private_view(h4, empty=["/opt"])
    _old_iproute2(bed, h2, packages, "newer")
    _old_iproute2(bed, h3, packages, "nothing")
    _old_iproute2(bed, h5, packages, "backports")
    bed.drop_foreign_macs(h4)
    for h in bed.hosts:  # no host ever had pydistem
        assert _sh(bed, h, f"ls {VENV}").returncode != 0
    machines = [h.machine for h in bed.hosts]
    options = BootstrapOptions(
        key=bed.key,
        state_dir=str(tmp_path / "state" / "{index}"),
        tag=unique_tag() + "{index}",
        wheel=built_wheel,
        wheelhouse=wheelhouse,
        daemon_timeout=180,
    )
    events: list[tuple[str, str, str]] = []
    with bed.operator():
        report = prepare(machines, options, lambda r, p, s: events.append((r.id, p, s)))
    try:
        _check(bed, tmp_path, report, events)
        _check_again(bed, report, machines, options)
    finally:
        with bed.operator():
            down = teardown(machines, options)
    assert down.ok, [m.to_dict() for m in down.machines]
    assert not Path("/opt/pydistem").exists()  # nothing of it reached this machine


def _check(bed, tmp_path: Path, report, events) -> None:
    h1, h2, _, h4, h5 = bed.hosts
    m1, m2, m3, m4, m5 = report.machines
    for m in (m1, m2, m4, m5):
        assert m.state == "ready", (m.id, m.phase, m.reason)
    assert report.coordinator == h1.address

    # 2. the wheel of this checkout, into a new venv, dependencies from the wheelhouse
    want = pydistem.__version__
    for m in (m1, m2, m4, m5):
        assert m.facts["pydistem"] == want
        installed = [a for a in m.actions if a.startswith(f"pydistem {want} installed")]
        assert installed and "(new venv)" in installed[0], m.actions
        assert "shipped wheels" in installed[0]
    where = _sh(bed, h1, f"{VENV}/bin/python -c 'import pydistem; print(pydistem.__file__)'")
    assert where.stdout.startswith(f"{VENV}/lib/"), where  # not this source tree
    for index, host in ((1, h1), (2, h2), (4, h4), (5, h5)):
        pid = int((tmp_path / "state" / str(index) / "distemd.pid").read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert argv[1] == f"{VENV}/bin/distemd".encode(), argv
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{host.netns}").st_ino

    # 1. iproute2: upgraded by apt where a newer one is offered, a clear failure elsewhere
    new = parse_ip_version(subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout)
    real_version = packages_version(bed, h2)
    assert m2.facts["iproute2"] == str(new)
    upgraded = f"iproute2 upgraded from {OLD[1]} to {new} (package {OLD[0]} -> {real_version}"
    assert f"{upgraded}, apt-get)" in m2.actions, m2.actions
    assert _sh(bed, h2, "ip -V").stdout.startswith(f"ip utility, iproute2-{new}")
    assert f"{upgraded}, apt-get -t bookworm-backports)" in m5.actions, m5.actions
    assert m5.facts["iproute2"] == str(new)
    assert (m3.state, m3.phase) == ("failed", "iproute2"), m3.to_dict()
    assert m3.reason == (
        f"iproute2 {OLD[1]} is older than 3.16 (VXLAN dstport); apt-get found no iproute2 "
        f"newer than {OLD[0]} in this machine's suites: add a suite that has one (e.g. "
        "bookworm-backports) and run bootstrap again"
    )
    assert m3.facts["iproute2"] == OLD[1]
    assert m1.facts["iproute2"] == str(new) and not any("iproute2" in a for a in m1.actions)
    for mid, phase in ((m3.id, p) for p in ("lxc", "pydistem", "uplink", "distemd", "pnode")):
        assert (mid, phase, "skipped") in events

    # 3. the uplink probe: host4 drops foreign MACs, the others carry them
    assert {m.id: m.facts["uplink"]["foreign_macs"] for m in (m1, m2, m4, m5)} == {
        h1.address: True,
        h2.address: True,
        h4.address: False,
        h5.address: True,
    }
    assert m4.facts["uplink"]["interface"] == "eth0" and m4.facts["uplink"]["heard"] == []
    assert sorted(m1.facts["uplink"]["heard"]) == [h2.address, h4.address, h5.address]
    assert any("uplink eth0 drops frames for foreign MACs" in w for w in m4.warnings)
    assert "uplink" not in m3.facts
    assert uplink_cell(m4) == "eth0: [red]drops foreign MACs[/] (VXLAN only)"
    assert uplink_cell(m1) == "eth0: [green]classic ok[/]"
    console = Console(record=True, width=300)
    console.print(summary_table(report.machines, "distem bootstrap"))
    text = console.export_text()
    assert "uplink" in text and "classic ok" in text and "drops foreign MACs" in text

    with bed.operator(), Client(report.url, token=report.token, timeout=60) as client:
        pnodes = {p["id"]: p for p in client.pnodes_info()}
        assert set(pnodes) == {h1.address, h2.address, h4.address, h5.address}
        assert {pid: p["features"]["l2:eth0"] for pid, p in pnodes.items()} == {
            h1.address: True,
            h2.address: True,
            h4.address: False,
            h5.address: True,
        }
        # host4's NIC is fixed now: a coordinator that probed again would see it pass;
        # it trusts bootstrap's verdict instead
        r = bed.run(h4, ["nft", "delete", "table", "netdev", "pdhostbed"])
        assert r.returncode == 0, r.stderr
        client.vnetwork_create("autonet", "10.145.0.0/24", {"root_interface": "eth0"})
        auto = client.vnetwork_info("autonet")
        assert auto["network_type"] == "vxlan", auto
        assert f"pnode {h4.address}: its uplink eth0 drops frames" in auto["reason"]
        client.vnetwork_create(
            "classic", "10.146.0.0/24", {"network_type": "bridge", "root_interface": "eth0"}
        )
        with pytest.raises(ValidationError) as refused:
            client.vnodes_create(
                ["c1"],
                {
                    "runtime": "netns",
                    "host": h4.address,
                    "vifaces": [{"name": "if0", "vnetwork": "classic"}],
                },
            )
        assert "drops frames for MAC addresses that are not its own" in str(refused.value)


def _check_again(bed, first, machines, options) -> None:
    """A second run finds every new venv, upgrade and distemd in place and changes
    nothing; it shows host4's fixed NIC, while the running pnode keeps its verdict."""
    with bed.operator():
        again = prepare(machines, options)
    assert again.ok and again.token == first.token
    m1, m2, m3, m4, m5 = again.machines
    for m in (m1, m2, m4, m5):
        assert m.state == "ready", (m.id, m.phase, m.reason)
        assert m.actions == [], (m.id, m.actions)
        assert m.facts["pydistem"].endswith("(already installed)")
        assert "already running" in m.facts["distemd"]
    assert (m3.state, m3.phase) == ("failed", "iproute2")
    assert m4.facts["uplink"]["foreign_macs"] is True  # its nft rule is gone
    with bed.operator(), Client(again.url, token=again.token, timeout=60) as client:
        pnode = next(p for p in client.pnodes_info() if p["id"] == m4.id)
    assert pnode["features"]["l2:eth0"] is False  # RUNNING: kept (distem pnode probe)


def packages_version(bed, host) -> str:
    return _sh(bed, host, "dpkg-query -W -f='${Version}' iproute2").stdout.strip()
