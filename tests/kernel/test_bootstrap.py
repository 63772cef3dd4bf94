"""``distem bootstrap`` / ``distem quit`` for real: paramiko against the sshds of a host
bed (tests/hostbed.py), distemd started in every host, pnodes inited on the coordinator.

The hosts share this machine's file system, so each gets its own state dir and tag
(``{index}``), and pydistem is found already installed in this checkout's venv.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pydistem.bootstrap import PHASES, BootstrapOptions, prepare, teardown
from pydistem.client import Client
from pydistem.model.machines import Machine, parse_machine_lines
from pydistem.testing import unique_tag

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

VENV = sys.prefix


def _options(bed, tmp_path: Path, **kw) -> BootstrapOptions:
    return BootstrapOptions(
        key=bed.key,
        venv=VENV,
        state_dir=str(tmp_path / "state" / "{index}"),
        tag=unique_tag() + "{index}",
        connect_timeout=10,
        daemon_timeout=180,  # a distemd starts in 2 s here, in minutes on a starved CPU
        **kw,
    )


def _pid(tmp_path: Path, index: int) -> int | None:
    path = tmp_path / "state" / str(index) / "distemd.pid"
    if not path.exists():
        return None
    pid = int(path.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _forward(bed, via, to, port: int) -> None:
    """``via``:port is forwarded to ``to``:22 (DNAT + masquerade in ``via``'s namespace),
    as CloudLab puts Xen VMs behind one public IP with one SSH port each."""
    rules = (
        "table ip pdfwd {\n"
        "  chain pre { type nat hook prerouting priority -100; "
        f"tcp dport {port} dnat to {to.address}:22; }}\n"
        "  chain post { type nat hook postrouting priority 100; "
        f"ip daddr {to.address} tcp dport 22 masquerade; }}\n"
        "}\n"
    )
    assert bed.run(via, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]).returncode == 0
    r = bed.run(via, ["nft", "-f", "-"], input=rules)
    assert r.returncode == 0, r.stderr


def test_bootstrap_hosts_end_to_end_then_quit_leaves_nothing(
    kernel_unchanged, hostbed, tmp_path: Path
) -> None:
    bed = hostbed(4, sshd=[0, 1, 3])  # host3 runs no sshd: it refuses connections
    h1, h2, h3, h4 = bed.hosts
    _forward(bed, h1, h4, 2202)  # host4 is reached as host1's address, port 2202
    machines = parse_machine_lines(
        [h1.address, f"root@{h2.address}", h3.address, f"{h1.address}:2202"]
    )
    options = _options(bed, tmp_path)
    events: list[tuple[str, str, str]] = []
    with bed.operator():
        report = prepare(machines, options, lambda r, p, s: events.append((r.id, p, s)))
    try:
        _check_bootstrap(bed, tmp_path, machines, options, report, events)
    except BaseException:
        with bed.operator():
            teardown(machines, options)  # leave nothing, even when a check failed
        raise


def _check_bootstrap(bed, tmp_path, machines, options, report, events) -> None:
    h1, h2, h3, h4 = bed.hosts
    by_id = {m.id: m for m in report.machines}
    refused = by_id[h3.address]
    assert (refused.state, refused.phase) == ("failed", "connect")
    assert "refused" in (refused.reason or "")
    ready = [h1.address, h2.address, f"{h1.address}:2202"]
    for mid in ready:
        m = by_id[mid]
        assert m.state == "ready", (mid, m.phase, m.reason)
        assert any("sch_netem missing" in w and "latency" in w for w in m.warnings), m.warnings
        assert m.facts["root"] == "login" and m.facts["pydistem"].endswith("(already installed)")
    assert report.ok and report.coordinator == h1.address
    assert report.url == f"http://{h1.address}:4567"
    assert by_id[h1.address].role == "coordinator" and by_id[h2.address].role == "agent"
    # every machine went through every phase once: the progress bars fill up
    for mid in [*ready, h3.address]:
        assert sorted(p for i, p, s in events if i == mid and s != "start") == sorted(PHASES)

    with bed.operator(), Client(report.url, token=report.token, timeout=30) as client:
        pnodes = {p["id"]: p for p in client.pnodes_info()}
        # keyed by how each machine is reached: host1 and host4 share an address
        assert set(pnodes) == set(ready)
        assert pnodes[f"{h1.address}:2202"]["address"] == h4.address
        assert pnodes[f"{h1.address}:2202"]["hostname"] == "host4"
        assert pnodes[h2.address]["hostname"] == "host2"
        assert pnodes[h2.address]["features"]["sch_netem"] is False
        assert all(p["status"] == "RUNNING" for p in pnodes.values())
        # build something on a remote pnode, so that quit has something to clean
        client.vnetwork_create("vnet", "10.144.0.0/24")
        client.vnodes_create(
            ["n1"],
            {
                "runtime": "netns",
                "host": h2.address,
                "vifaces": [{"name": "if0", "vnetwork": "vnet"}],
            },
        )
        client.vnodes_start(["n1"])
        assert client.vnode_info("n1")["status"] == "RUNNING"

    # each distemd runs inside its host (its network namespace)
    for index, host in ((1, h1), (2, h2), (4, h4)):
        pid = _pid(tmp_path, index)
        assert pid, f"no distemd for host{index}"
        ns = os.stat(f"/run/netns/{host.netns}").st_ino
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == ns

    # a second run changes nothing: every distemd is already running
    with bed.operator():
        again = prepare(machines, options)
    assert again.ok and again.token == report.token
    for m in again.machines[:2] + again.machines[3:]:
        assert m.actions == [] and "already running" in m.facts["distemd"], m.to_dict()

    # an agent dies: quit still leaves nothing (its journal is cleaned over SSH)
    os.kill(_pid(tmp_path, 2) or 0, signal.SIGKILL)
    with bed.operator():
        down = teardown(machines, options)
    assert [m.state for m in down.machines] == ["ready", "ready", "failed", "ready"], [
        m.to_dict() for m in down.machines
    ]
    assert down.quit["removed"]["pnodes"][h2.address].get("error")  # it could not reach it
    cleaned = {m.id: m.actions for m in down.machines}
    assert any("journaled kernel objects removed" in a for a in cleaned[h2.address])
    assert all(_pid(tmp_path, i) is None for i in (1, 2, 4))
    assert not (tmp_path / "state" / "1" / "coordinator.sqlite").exists()


def test_strict_one_refusing_machine_fails_the_run_and_starts_nothing(
    hostbed, tmp_path: Path
) -> None:
    bed = hostbed(2, sshd=[0])
    machines = [h.machine for h in bed.hosts]
    with bed.operator():
        report = prepare(machines, _options(bed, tmp_path, strict=True))
    assert not report.ok and report.url is None
    first, second = report.machines
    assert second.state == "failed" and "refused" in (second.reason or "")
    assert first.state == "skipped" and "--strict" in (first.reason or "")
    assert _pid(tmp_path, 1) is None


@pytest.fixture
def sudo_users(hostbed, tmp_path: Path):
    """A bed of one host and two local users: alice (passwordless sudo) and bob (none),
    both accepting a key that root does not accept. Removed afterwards."""
    if subprocess.run(["sh", "-c", "command -v sudo"], capture_output=True).returncode:
        pytest.skip("sudo is not installed (scripts/install.sh installs it)")
    bed = hostbed(2)
    key = tmp_path / "user_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    suffix = unique_tag()
    users = {"alice": f"pda{suffix}", "bob": f"pdb{suffix}"}
    sudoers = Path(f"/etc/sudoers.d/pydistem-test-{suffix}")
    # sshd reads a user's authorized_keys as that user: let them traverse pytest's
    # private directories down to the bed's keys (restored afterwards)
    modes = {}
    for d in [bed.dir, *bed.dir.parents]:
        if d == Path("/tmp"):
            break
        modes[d] = d.stat().st_mode & 0o7777
    # should bootstrap ever pick the machine's own root keys file, put it back as it was
    real = Path("/root/.ssh/authorized_keys")
    real_before = real.read_bytes() if real.exists() else None
    try:
        for d, mode in modes.items():
            d.chmod(mode | 0o011)
        for name in users.values():
            subprocess.run(
                ["useradd", "-m", "-s", "/bin/sh", "-p", "*", name], check=True, capture_output=True
            )
            bed.authorize(name, (tmp_path / "user_key.pub").read_text())
        sudoers.write_text(f"{users['alice']} ALL=(ALL) NOPASSWD: ALL\n")
        sudoers.chmod(0o440)
        yield bed, key, users
    finally:
        if real_before is None:
            real.unlink(missing_ok=True)
        elif real.read_bytes() != real_before:
            real.write_bytes(real_before)
        for d, mode in modes.items():
            d.chmod(mode)
        sudoers.unlink(missing_ok=True)
        for name in users.values():
            subprocess.run(["userdel", "-r", "-f", name], capture_output=True, check=False)


def test_non_root_user_with_sudo_gains_root_and_one_without_is_told_why(
    sudo_users, tmp_path: Path
) -> None:
    bed, key, users = sudo_users
    root_keys = bed.dir / "authorized_keys" / "root"
    assert key.with_suffix(".pub").read_text().split()[1] not in root_keys.read_text()
    machines = [
        Machine(bed.hosts[0].address, user=users["alice"]),
        Machine(bed.hosts[1].address, user=users["bob"]),
    ]
    options = _options(bed, tmp_path)
    options = BootstrapOptions(**{**options.__dict__, "key": key})
    with bed.operator():
        report = prepare(machines, options)
        alice, bob = report.machines
        assert alice.state == "ready", alice.to_dict()
        assert alice.facts["root"] == f"key added through sudo ({users['alice']})"
        assert alice.facts["root_authorized_keys"] == str(root_keys)
        assert key.with_suffix(".pub").read_text().split()[1] in root_keys.read_text()
        assert (bob.state, bob.phase) == ("failed", "root")
        assert "no passwordless sudo" in (bob.reason or "")
        down = teardown(machines[:1], options)  # now root logs in with our key directly
    assert down.ok and _pid(tmp_path, 1) is None


def test_cli_through_a_gateway_with_distem_compat(kernel_unchanged, hostbed, tmp_path: Path):
    bed = hostbed(3)
    gw, h2, h3 = bed.hosts
    machine_file = tmp_path / "machines"
    machine_file.write_text(f"# behind the gateway\n{h2.address}\nroot@{h3.address}:22\n")
    env = {
        **os.environ,
        "PYDISTEM_BOOTSTRAP_FILE": str(tmp_path / "cfg" / "bootstrap.json"),
        "HOME": str(tmp_path),
    }
    common = [
        "--key", str(bed.key), "--venv", VENV, "--state-dir", str(tmp_path / "state" / "{index}"),
        "--tag", unique_tag() + "{index}", "--timeout", "5",
    ]  # fmt: skip
    distem = [str(Path(VENV) / "bin" / "distem")]
    r = bed.operator_run(
        [*distem, "bootstrap", "-f", str(machine_file), "--gateway", f"root@{gw.address}",
         *common, "--distem-compat", "--distem-compat-allow", "10.199.0.0/24"],
        env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ready" in r.stdout and f"http://{h2.address}:4567" in r.stdout
    record = json.loads((tmp_path / "cfg" / "bootstrap.json").read_text())
    assert record["coordinator"] == h2.address and record["gateway"] == f"root@{gw.address}"
    token = (tmp_path / "cfg" / "token").read_text().strip()
    cmdline = Path(f"/proc/{_pid(tmp_path, 1)}/cmdline").read_bytes().split(b"\0")
    assert b"--distem-compat" in cmdline and b"--pnode-id" in cmdline
    with bed.operator():
        with Client(f"http://{h2.address}:4567", token=token, timeout=30) as client:
            assert {p["id"] for p in client.pnodes_info()} == {h2.address, h3.address}
        import httpx

        distem1 = httpx.get(f"http://{h2.address}:4567/pnodes", timeout=10, trust_env=False)
        assert distem1.status_code == 200 and h3.address in distem1.text
    # the SSH connections to host2 and host3 came from the gateway
    log = (bed.dir / "sshd_host2.log").read_text()
    assert f"from {gw.address}" in log
    r = bed.operator_run([*distem, "quit", "--timeout", "5"], env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _pid(tmp_path, 1) is None and _pid(tmp_path, 2) is None
    assert not (tmp_path / "cfg" / "bootstrap.json").exists()
