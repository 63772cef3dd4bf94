"""distem bootstrap's logic as data: ``ip -V`` outputs, the iproute2 plan, the kernel
feature probe's lines, per-machine paths, distemd's command line, the key append script,
and pnodes keyed by how a machine is reached (hostname normalisation)."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pydistem.bootstrap.checks import (
    APT_INSTALL_IPROUTE2,
    APT_UPGRADE_IPROUTE2,
    backports_suites,
    parse_features,
    parse_ip_version,
    plan_iproute2,
)
from pydistem.bootstrap.daemons import distemd_argv
from pydistem.bootstrap.install import apt_why, has_build_requirements
from pydistem.bootstrap.options import BootstrapOptions
from pydistem.bootstrap.report import MachineReport
from pydistem.bootstrap.root import append_key_script
from pydistem.bootstrap.ssh import Result
from pydistem.bootstrap.uplink import Uplink, judge
from pydistem.cli.bootstrap import uplink_cell
from pydistem.cli.main import main
from pydistem.coordinator.service import Coordinator
from pydistem.errors import ValidationError
from pydistem.model.machines import Machine
from pydistem.state.store import Store

# ------------------------------------------------------------------------- ip -V


@pytest.mark.parametrize(
    "text, shown, ok",
    [
        ("ip utility, iproute2-6.1.0, libbpf 1.1.2", "6.1.0", True),  # Debian 12
        ("ip utility, iproute2-5.10.0", "5.10.0", True),  # Debian 11
        ("ip utility, iproute2-5.18.0, libbpf 0.8.0", "5.18.0", True),  # Fedora 36
        ("ip utility, iproute2-ss200127", "ss200127", True),  # Ubuntu 20.04 (5.5)
        ("ip utility, iproute2-ss140804", "ss140804", True),  # Debian 8: 3.16, the minimum
        ("ip utility, iproute2-ss140411", "ss140411", False),  # 3.14
        ("ip utility, iproute2-ss131122", "ss131122", False),  # Ubuntu 14.04 (3.12)
        ("ip utility, iproute2-ss130716", "ss130716", False),  # CentOS 7.0 (3.10)
        ("ip utility, iproute2-ss120521\n", "ss120521", False),  # Debian 7 (3.4)
        ("ip utility, iproute2-3.16.0", "3.16.0", True),
        ("ip utility, iproute2-3.15.0", "3.15.0", False),
        ("BusyBox v1.36.1 (2023-06-12) multi-call binary.", "unknown", False),
        ("sh: 1: ip: not found", "unknown", False),
        ("", "unknown", False),
    ],
)
def test_ip_version_formats(text: str, shown: str, ok: bool) -> None:
    version = parse_ip_version(text)
    assert str(version) == shown
    assert version.has_vxlan_dstport is ok


def test_snapshot_is_a_date() -> None:
    assert parse_ip_version("iproute2-ss131122").snapshot == date(2013, 11, 22)
    assert not parse_ip_version("iproute2-ss139999").known  # not a date


def test_iproute2_plan_chooses_the_apt_upgrade_for_an_old_ip() -> None:
    old = parse_ip_version("ip utility, iproute2-ss131122")
    plan = plan_iproute2(old, has_apt=True)
    assert (plan.action, plan.command) == ("upgrade", APT_UPGRADE_IPROUTE2)
    assert "ss131122 is older than 3.16" in plan.reason
    assert "--only-upgrade iproute2" in plan.command
    missing = plan_iproute2(parse_ip_version("sh: ip: not found"), has_apt=True)
    assert (missing.action, missing.command) == ("upgrade", APT_INSTALL_IPROUTE2)
    no_apt = plan_iproute2(old, has_apt=False)
    assert no_apt.action == "fail" and "no apt-get" in no_apt.reason
    assert plan_iproute2(parse_ip_version("iproute2-6.1.0"), has_apt=False).action == "ok"


# apt-cache policy iproute2 on Debian 12 with bookworm-backports configured
POLICY_BACKPORTS = """iproute2:
  Installed: 6.1.0-3
  Candidate: 6.1.0-3
  Version table:
     6.6.0-1~bpo12+1 100
        100 http://deb.debian.org/debian bookworm-backports/main amd64 Packages
 *** 6.1.0-3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        500 http://deb.debian.org/debian bookworm-backports/main i386 Packages
        100 /var/lib/dpkg/status
"""
POLICY_FLAT = """iproute2:
  Installed: 3.14.0-1
  Candidate: 3.14.0-1
  Version table:
 *** 3.14.0-1 100
        100 /var/lib/dpkg/status
     6.1.0-3 500
        500 file:/srv/repo ./ Packages
"""


@pytest.mark.parametrize(
    "requires, local",
    [
        ('["setuptools>=1", "wheel"]', True),
        ('["setuptools>=99999"]', False),  # too old here: an isolated build fetches one
        ('["pd-no-such-build-backend"]', False),
        ("[]", True),
    ],
)
def test_wheel_builds_without_isolation_only_with_the_declared_build_tools(
    tmp_path: Path, requires: str, local: bool
) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[build-system]\nrequires = {requires}\n")
    assert has_build_requirements(str(tmp_path)) is local
    assert has_build_requirements(str(tmp_path / "nowhere")) is False


def test_apt_failure_reason_is_its_first_error_line() -> None:
    # apt-get update on a machine whose mirror is unreachable
    stderr = (
        "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  "
        "Could not resolve 'deb.debian.org'\n"
        "E: Failed to fetch file:/srv/repo/./Packages  File not found\n"
        "E: Some index files failed to download. They have been ignored, or old ones used "
        "instead.\n"
    )
    assert (
        apt_why(Result(100, "", stderr))
        == "E: Failed to fetch file:/srv/repo/./Packages  File not found"
    )
    assert apt_why(Result(1, "", "dpkg: error\n")) == "dpkg: error"


def test_backports_suites_from_apt_cache_policy() -> None:
    assert backports_suites(POLICY_BACKPORTS) == ["bookworm-backports"]
    assert backports_suites(POLICY_FLAT) == []
    assert backports_suites("") == []


# ------------------------------------------------------------------------- uplink probe


def test_uplink_judge_needs_hearing_and_being_heard() -> None:
    verdicts = judge(
        {
            "a": Uplink("eth0", {"b", "x"}),  # hears b (x is no machine of this round)
            "b": Uplink("eth0", {"a"}),
            "xen": Uplink("eth0", set()),  # its NIC drops foreign MACs: hears nobody
            "mute": Uplink("eth1", {"a", "b"}),  # hears all, nobody hears it
            "err": Uplink(None, {"a"}, error="no interface of this machine holds 10.0.0.9"),
        }
    )
    assert verdicts["a"].carries_foreign_macs is True
    assert verdicts["b"].carries_foreign_macs is True
    assert verdicts["xen"].carries_foreign_macs is False
    assert "heard none" in verdicts["xen"].why
    assert verdicts["mute"].carries_foreign_macs is False
    assert "no other machine heard it" in verdicts["mute"].why
    assert verdicts["err"].carries_foreign_macs is None
    assert "10.0.0.9" in verdicts["err"].why
    alone = judge({"a": Uplink("eth0", set())})["a"]
    assert alone.carries_foreign_macs is None and "no other machine" in alone.why


def test_uplink_cell_shows_the_verdict() -> None:
    m = MachineReport(Machine("10.0.0.1"), 1)
    assert uplink_cell(m) == ""
    m.facts["uplink"] = {"interface": "eth0", "foreign_macs": False}
    assert "drops foreign MACs" in uplink_cell(m) and "VXLAN only" in uplink_cell(m)
    m.facts["uplink"] = {"interface": "eth0", "foreign_macs": None}
    assert "not probed" in uplink_cell(m)


# ------------------------------------------------------------------------- kernel features

THIS_MACHINE = """netns ok
veth ok
bridge ok
vxlan ok
sch_htb ok
sch_netem missing Error: Specified qdisc kind is unknown.
cgroups ok
"""


def test_missing_netem_is_a_warning_naming_the_consequence() -> None:
    report = parse_features(THIS_MACHINE)
    assert report.errors == []
    assert report.present["sch_netem"] is False and report.present["vxlan"] is True
    (warning,) = report.warnings
    assert warning.startswith("sch_netem missing (Error: Specified qdisc kind is unknown.)")
    assert "latency" in warning and "loss" in warning and "htb still work" in warning


def test_missing_required_features_are_errors() -> None:
    out = THIS_MACHINE.replace("veth ok", "veth missing Error: Unknown device type.")
    out = out.replace("cgroups ok\n", "")  # not reported at all
    report = parse_features(out)
    assert [e.split(" ")[0] for e in report.errors] == ["veth", "cgroups"]
    assert "not reported by the probe" in report.errors[1]


# ------------------------------------------------------------------------- options, argv


def test_paths_per_machine_and_bad_options() -> None:
    opts = BootstrapOptions(state_dir="/srv/pd/{id}", tag="b{index}", venv="/opt/v{index}")
    paths = opts.for_machine(Machine.parse("10.0.0.1:2202"), 3)
    assert (paths.state_dir, paths.tag, paths.venv) == ("/srv/pd/10.0.0.1_2202", "b3", "/opt/v3")
    assert paths.pid_file == "/srv/pd/10.0.0.1_2202/distemd.pid"
    with pytest.raises(ValidationError) as err:
        BootstrapOptions(tag="Too-Long").for_machine(Machine("h"), 1)
    assert err.value.field == "tag"
    with pytest.raises(ValidationError) as err:
        BootstrapOptions(venv="relative/venv").for_machine(Machine("h"), 1)
    assert err.value.field == "venv"


def test_distemd_argv_coordinator_passes_distem_compat_through() -> None:
    opts = BootstrapOptions(distem_compat=True, distem_compat_allow="10.0.0.0/8")
    paths = opts.for_machine(Machine("h"), 1)
    argv = distemd_argv(paths, opts, "10.0.0.1", coordinator_id="h:2222")
    assert argv[0] == "/opt/pydistem/venv/bin/distemd"
    joined = " ".join(argv)
    assert "-d --pnode-id h:2222 --port 4567" in joined
    assert "--bind 10.0.0.1" in joined and "--state-dir /var/lib/pydistem --tag a" in joined
    assert joined.endswith("--distem-compat --distem-compat-allow 10.0.0.0/8")
    agent = distemd_argv(paths, opts, "10.0.0.2")
    assert "-d" not in agent and "--distem-compat" not in agent and agent[-2:] == ["--port", "4568"]


# ------------------------------------------------------------------------- root's key


def test_append_key_script_adds_the_key_once(tmp_path: Path) -> None:
    target = tmp_path / "new-dir" / "authorized_keys"
    line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake pydistem-bootstrap"
    for _ in range(2):
        subprocess.run(["sh", "-c", append_key_script(str(target), line)], check=True)
    assert target.read_text() == line + "\n"
    assert target.parent.stat().st_mode & 0o777 == 0o700
    assert target.stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------------------- pnode ids


class TwinAgent:
    """An agent link that answers ``info`` only (what pnode_init asks)."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname

    def info(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "cores": 2, "memory_mb": 1024, "runtimes": ["netns"]}


def test_pnodes_are_keyed_by_how_machines_are_reached_not_by_hostname() -> None:
    reached: list[tuple[str, str, int]] = []

    def connect(p: Any) -> TwinAgent:
        reached.append((p.id, p.address, p.port))
        return TwinAgent("localhost.localdomain")  # what a badly configured VM prints

    local = TwinAgent("node-0")
    c = Coordinator(Store(":memory:"), connect=connect, local_agent=local, local_id="10.0.0.1")  # type: ignore[arg-type]
    try:
        targets = [
            {"id": "10.0.0.1", "address": "10.0.0.1"},
            {"id": "155.98.36.10:25010", "address": "10.10.1.2"},
            {"id": "155.98.36.10:25011", "address": "10.10.1.3", "features": {"sch_netem": False}},
            # a name that no DNS knows: never resolved, it is only a key
            {"id": "pc-7.example.invalid", "address": "10.10.1.4", "port": 4600},
        ]
        done = c.pnode_init(targets)
        assert [p.id for p in done] == [t["id"] for t in targets]
        assert reached == [
            ("155.98.36.10:25010", "10.10.1.2", 4568),
            ("155.98.36.10:25011", "10.10.1.3", 4568),
            ("pc-7.example.invalid", "10.10.1.4", 4600),
        ]  # the first is the coordinator's own agent, in-process
        assert c.link("10.0.0.1") is local
        assert {p.hostname for p in done[1:]} == {"localhost.localdomain"}  # changes nothing
        assert c.pnodes["155.98.36.10:25011"].features == {"sch_netem": False}
        assert c.resolve_pnode("155.98.36.10:25010") == "155.98.36.10:25010"
        assert c.pnode_init([targets[1]])[0].status == "RUNNING"  # idempotent
        assert len(reached) == 3
        with pytest.raises(ValidationError) as err:
            c.pnode_init([{"id": "x"}])
        assert err.value.field == "targets[0]"
    finally:
        c.close()


# ------------------------------------------------------------------------- CLI input


def test_cli_bad_machine_file_and_key_exit_2_and_touch_nothing(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "machines"
    bad.write_text("node-1\nroot@node-2:99999\n")
    assert main(["bootstrap", "-f", str(bad)]) == 2
    assert f"{bad}:2: port 99999 is outside 1-65535" in capsys.readouterr().err
    bad.write_text("node-1\n")
    assert main(["bootstrap", "-f", str(bad), "--key", str(tmp_path / "nokey")]) == 2
    assert "key: SSH key" in capsys.readouterr().err
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    missing = tmp_path / "no-wheels"
    assert main(["bootstrap", "-f", str(bad), "--key", str(key), "--wheelhouse", str(missing)]) == 2
    assert f"wheelhouse: {missing} is not a directory" in capsys.readouterr().err
