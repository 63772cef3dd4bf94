"""The ``ssh`` adapter on a host bed: two machines reached through a gateway host, prepared
by the bootstrap, a platform built on them by the coordinator it started, a command
run in every vnode, and on release the machines left with no pydistem process.

The adapter declares no layer 2 between its machines, so the ``auto`` vnetwork (which
names an uplink, ``eth0``) must become VXLAN before the coordinator sees it: no uplink
probe, no bridge on eth0."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from pydistem.testing import unique_tag

pytestmark = [pytest.mark.testbeds, pytest.mark.kernel, pytest.mark.slow]

DISTEM = str(Path(sys.executable).parent / "distem")


def distemd_pids(bed, host) -> list[int]:
    pids = bed.operator_run(["ip", "netns", "pids", host.netns]).stdout.split()
    out = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"distemd" in cmdline or b"pydistem.daemon" in cmdline:
            out.append(int(pid))
    return out


def test_ssh_machines_through_a_gateway(kernel_unchanged: object, hostbed, tmp_path: Path) -> None:
    bed = hostbed(3)
    gateway, m1, m2 = bed.hosts
    tag = unique_tag()[:4]
    vif = {"name": "if0", "vnetwork": "vnet"}
    doc = {
        "testbed": {
            "adapter": "ssh",
            "machines": [m1.address, m2.address],
            "gateway": f"root@{gateway.address}",
            "key": str(bed.key),
            "bootstrap": {
                "venv": sys.prefix,
                "state_dir": str(tmp_path / "state" / "{index}"),
                "tag": tag + "{index}",
                "install_packages": False,
            },
        },
        "vnetworks": [{"name": "vnet", "address": "10.153.0.0/24", "root_interface": "eth0"}],
        "vnodes": [
            {"name": f"v-{i}", "runtime": "netns", "host": m.address, "vifaces": [vif]}
            for i, m in ((1, m1), (2, m2))
        ],
    }
    platform = tmp_path / "p.yaml"
    platform.write_text(yaml.safe_dump(doc))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "COLUMNS": "200",
        "PYDISTEM_STATE_DIR": str(tmp_path / "cli-state"),
        "PYDISTEM_PID_FILE": str(tmp_path / "distemd.pid"),
        "PYDISTEM_LOG_FILE": str(tmp_path / "distemd.log"),
    }
    res = bed.operator_run(
        [
            DISTEM,
            "deploy",
            str(platform),
            "--run",
            "echo ran-in-vnode; ip -o link show if0",
        ],
        env=env,
        timeout=240,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert res.stdout.count("ran-in-vnode") == 2, out
    # VXLAN chosen from the adapter's capabilities (the vifaces got VXLAN's MTU), even
    # though the bootstrap found eth0 carrying foreign MACs; classic mode never tried
    assert "vnetwork vnet: vxlan (auto: testbed ssh gives no layer 2" in out, out
    assert res.stdout.count("mtu 1450") == 2, res.stdout
    coordinator_log = (tmp_path / "state" / "1" / "distemd.log").read_text(errors="replace")
    assert "vnet" in coordinator_log, coordinator_log[-3000:]  # it logged the build
    assert "l2 probe" not in coordinator_log, coordinator_log[-3000:]
    assert f"coordinator http://{m1.address}:4567" in out
    assert f"root@{m1.address} via root@{gateway.address}" in out
    assert re.search(r"released\s*│\s*True", res.stderr), res.stderr
    # released = left as found: no distemd on the machines, nothing saved
    assert distemd_pids(bed, m1) == [] and distemd_pids(bed, m2) == []
    assert not list((tmp_path / "cli-state" / "reservations").glob("*.json"))
