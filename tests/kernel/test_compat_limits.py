"""Distem's vcpu and vmem over the wire: raw form requests against the in-process
compat app (every route, incl. the two that answered 500 on Distem's coordinator), then
the PyPI ``distem`` client, pydistem's own client and CLI against a real distemd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_compat_wire import FORM, distemd_port, form, ok, stack  # noqa: F401 - fixtures

from pydistem.agent.cgroups import is_v2
from pydistem.client import Client
from pydistem.coordinator import limits
from pydistem.coordinator.compat.encoding import ERROR_HEADER
from pydistem.coordinator.service import Coordinator
from pydistem.errors import ValidationError
from pydistem.plugins.limits import blockdev

pytestmark = [pytest.mark.kernel, pytest.mark.lxc]


def quota(c: Coordinator, vnode: str) -> str:
    for d in limits.limits_info(c, vnode)["cgroups"]:
        if (Path(d) / "cpu.cfs_quota_us").exists():
            return (Path(d) / "cpu.cfs_quota_us").read_text().strip()
    raise AssertionError("no cpu.cfs_quota_us")


def err(r) -> str:  # type: ignore[no-untyped-def]
    return r.status_code, r.headers.get(ERROR_HEADER, "").split(" ", 1)[0]


def test_vcpu_and_vmem_routes(stack: tuple[Coordinator, TestClient], image: Path) -> None:  # noqa: F811
    c, client = stack
    put = lambda path, **f: client.put(path, content=form(**f), headers=FORM)  # noqa: E731
    post = lambda path, **f: client.post(path, content=form(**f), headers=FORM)  # noqa: E731
    ok(post("/pnodes", target=["localhost"]))
    desc = {
        "vfilesystem": {"image": str(image)},
        "vcpu": {"corenb": "1", "val": "0.5", "unit": "ratio"},
        "VMEM": {"mem": "64", "swap": "0", "hierarchy": "v1"},
    }
    node = ok(post("/vnodes/node1", desc=desc, ssh_key={}))
    assert node["vmem"]["mem"] == "64" and list(node["vcpu"]["vcores"]) == ["0"]
    ok(put("/vnodes/node1", type="update", desc={"status": "RUNNING"}))

    # GET /vnodes/:v/cpu answers (Distem's coordinator: 500)
    vcpu = ok(client.get("/vnodes/node1/cpu"))
    (core,) = vcpu["vcores"].values()
    mhz = c.pnodes["localhost"].cpu_mhz
    assert core["pcore"] is not None and float(core["frequency"]) == pytest.approx(mhz / 2)
    assert quota(c, "node1") == "50000"
    ok(put("/vnodes/node1/cpu", desc={"val": "0.25", "unit": "ratio"}))  # live
    assert quota(c, "node1") == "25000"
    assert err(post("/vnodes/node1/cpu", desc={"corenb": 1})) == (
        400,
        "AlreadyExistingResourceError",
    )
    assert err(put("/vnodes/node1/cpu", desc={"val": 1.5, "unit": "ratio"})) == (
        400,
        "InvalidParameterError",
    )
    assert quota(c, "node1") == "25000"  # bad input changed nothing
    assert ok(client.delete("/vnodes/node1/cpu"))["vcores"]["0"]["frequency"]
    assert quota(c, "node1") == "-1"
    assert err(client.get("/vnodes/node1/cpu"))[0] == 404
    r = post("/vnodes/node1/cpu", desc={"corenb": "99", "val": 1, "unit": "ratio"})
    assert err(r) == (400, "InvalidParameterError") and "cpu.cores" in r.headers[ERROR_HEADER]
    # the CLI's --set-vcpu vector: MHz as a string
    half = f"{mhz / 2:.0f}"
    ok(post("/vnodes/node1/cpu", desc={"corenb": "1", "val": half, "unit": "mhz"}))
    assert abs(int(quota(c, "node1")) - 50000) <= 100

    # vmem: POST works (Distem's coordinator: 500), PUT answers an empty body
    assert ok(client.delete("/vnodes/node1/vmem"))["mem"] == "64"
    assert ok(post("/vnodes/node1/vmem", desc={"mem": "32", "swap": [], "hierarchy": "v1"})) == {
        "mem": "32",
        "swap": "",
        "hierarchy": None,
        "soft_limit": "",
        "hard_limit": "",
    }
    grab = "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo rc=$?"
    assert ok(post("/vnodes/node1/commands", command=grab)) == ["rc=137"]
    r = put("/vnodes/node1/vmem", desc={"mem": "128"})
    assert (r.status_code, r.content) == (200, b"")
    assert ok(client.get("/vnodes/node1/vmem"))["mem"] == "128"
    assert ok(post("/vnodes/node1/commands", command=grab)) == ["rc=0"]
    # WIRE_CAPTURE's vnode_update vector
    v = ok(put("/vnodes/node1", desc={"vmem": {"mem": 512}}, type="update", **{"async": "false"}))
    assert v["vmem"]["mem"] == "512" and c.vnodes["node1"].memory.limit == "512"
    assert err(post("/vnodes/node1/vmem", desc={"mem": "1k"})) == (400, "InvalidParameterError")
    ok(put("/vnodes", type="remove"))


def test_distem_client_then_ours(distemd_port: int, image: Path, tmp_path: Path) -> None:  # noqa: F811
    distem = pytest.importorskip("distem")
    d = distem.Distem(serveraddr="127.0.0.1", port=distemd_port)
    d.proxies = {}
    d.client.trust_env = False
    d.pnode_init(["localhost"])
    d.vnode_create("node1", {"vfilesystem": {"image": str(image), "shared": True}})
    assert d.vnode_start("node1")["status"] == "RUNNING"
    created = d.vcpu_create("node1", 0.5, "ratio", 1)
    assert list(created["vcores"]) == ["0"]
    assert d.vcpu_update("node1", 0.75, "ratio")["vcores"]["0"]["pcore"] is not None
    assert d.vcpu_info("node1") == d.vnode_info("node1")["vcpu"] | {
        "vcores": d.vcpu_info("node1")["vcores"]
    }
    d.vcpu_remove("node1")
    assert d.vnode_info("node1")["vcpu"] is None
    assert d.vmem_create("node1", 64)["mem"] == "64"
    d.vmem_update("node1", {"mem": 96})
    assert d.vnode_info("node1")["vmem"]["mem"] == "96"

    # pydistem's own client and CLI on the same daemon, the native API with its token
    url = f"http://127.0.0.1:{distemd_port}"
    token = (tmp_path / "state" / "token").read_text().strip()
    with Client(url=url, token=token) as cl:
        cl.vcpu_create("node1", 0.5, "ratio", corenb=1)
        assert cl.vcpu_info("node1")["frequency"] == 0.5
        with pytest.raises(ValidationError) as info:
            cl.vcpu_update("node1", 0, "ratio")
        assert info.value.field == "cpu.frequency"
        assert cl.vmem_info("node1")["limit"] == "96"
    env = {**os.environ, "PYDISTEM_URL": url, "PYDISTEM_TOKEN": token}
    cli = str(Path(sys.executable).with_name("distem"))
    run = subprocess.run(
        [cli, "vcpu", "update", "node1", "--frequency", "0.25"], env=env, capture_output=True
    )
    assert run.returncode == 0, run.stderr
    shown = subprocess.run([cli, "vcpu", "show", "node1"], env=env, capture_output=True)
    assert json.loads(shown.stdout)["cpu"]["frequency"] == 0.25
    bad = subprocess.run(
        [cli, "vmem", "update", "node1", "--limit=-3g"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "memory.limit" in bad.stderr
    d1 = subprocess.run(
        [cli, "--set-vmem", "vnode=node1,mem=256"], env=env, capture_output=True, text=True
    )
    assert d1.returncode != 0 and "already exists" in d1.stderr  # Distem: 400 too


def disk_path(dev: str) -> str:
    """``/dev/<name>`` of block device ``major:minor`` (its uevent names it)."""
    uevent = Path(f"/sys/dev/block/{dev}/uevent").read_text()
    return "/dev/" + next(x[8:] for x in uevent.splitlines() if x.startswith("DEVNAME="))


def cgroup_text(c: Coordinator, vnode: str, file: str) -> str:
    for d in limits.limits_info(c, vnode)["cgroups"]:
        if (Path(d) / file).exists():
            return (Path(d) / file).read_text().strip()
    raise AssertionError(f"no {file}")


@pytest.mark.skipif(is_v2(), reason="reads the v1 blkio and memory files")
def test_disk_throttling_and_soft_limit_routes(
    stack: tuple[Coordinator, TestClient],  # noqa: F811
    image: Path,
    tmp_path: Path,
) -> None:
    c, client = stack
    put = lambda path, **f: client.put(path, content=form(**f), headers=FORM)  # noqa: E731
    post = lambda path, **f: client.post(path, content=form(**f), headers=FORM)  # noqa: E731
    ok(post("/pnodes", target=["localhost"]))
    dev = blockdev.resolve(None, tmp_path, "disk")  # the agent's folder is under tmp_path
    device = disk_path(dev)
    mib = 2**20
    throttling = {
        "hierarchy": "v1",
        "limits": [{"device": device, "read_limit": str(8 * mib), "write_limit": str(4 * mib)}],
    }
    desc = {
        "vfilesystem": {"image": str(image), "disk_throttling": throttling},
        "vmem": {"mem": "64", "soft_limit": "32"},
    }
    node = ok(post("/vnodes/node2", desc=desc))
    assert node["vfilesystem"]["disk_throttling"] == {
        "hierarchy": None,
        "limits": [{"device": device, "read_limit": str(8 * mib), "write_limit": str(4 * mib)}],
    }
    assert node["vmem"]["soft_limit"] == "32"
    ok(put("/vnodes/node2", type="update", desc={"status": "RUNNING"}))
    assert cgroup_text(c, "node2", "blkio.throttle.write_bps_device") == f"{dev} {4 * mib}"
    assert cgroup_text(c, "node2", "blkio.throttle.read_bps_device") == f"{dev} {8 * mib}"
    assert int(cgroup_text(c, "node2", "memory.soft_limit_in_bytes")) == 32 * mib

    # live: PUT /vnodes/:v/filesystem with only disk_throttling (Distem 1.3's flat shape)
    fs = ok(
        put(
            "/vnodes/node2/filesystem",
            desc={"disk_throttling": {"device": device, "write_limit": str(2 * mib)}},
        )
    )
    assert fs["disk_throttling"]["limits"][0]["write_limit"] == str(2 * mib)
    assert fs["image"] == f"file://{image}" or fs["image"] == str(image)
    assert cgroup_text(c, "node2", "blkio.throttle.write_bps_device") == f"{dev} {2 * mib}"
    assert cgroup_text(c, "node2", "blkio.throttle.read_bps_device") == ""
    cmd = "dd if=/dev/zero of=/big bs=256k count=24 oflag=direct 2>/dev/null; echo done"
    t0 = time.monotonic()
    assert ok(post("/vnodes/node2/commands", command=cmd)) == ["done"]
    rate = 6 / (time.monotonic() - t0)
    assert 0.75 * 2 <= rate <= 1.25 * 2, f"{rate:.2f} MiB/s under a 2 MiB/s write limit"

    # the same through a vnode update (type=update, vfilesystem in the desc), live
    v = ok(
        put(
            "/vnodes/node2",
            type="update",
            desc={
                "vfilesystem": {
                    "disk_throttling": {"limits": [{"device": device, "write_limit": str(3 * mib)}]}
                }
            },
        )
    )
    assert v["vfilesystem"]["disk_throttling"]["limits"][0]["write_limit"] == str(3 * mib)
    assert cgroup_text(c, "node2", "blkio.throttle.write_bps_device") == f"{dev} {3 * mib}"
    ok(
        put(
            "/vnodes/node2/filesystem",
            desc={"disk_throttling": {"device": device, "write_limit": str(2 * mib)}},
        )
    )

    # bad input changes nothing
    r = put(
        "/vnodes/node2/filesystem",
        desc={"disk_throttling": {"limits": [{"device": "/dev/null", "read_limit": "1"}]}},
    )
    assert err(r) == (400, "InvalidParameterError") and "/dev/null" in r.headers[ERROR_HEADER]
    r = put(
        "/vnodes/node2/filesystem",
        desc={"disk_throttling": {"limits": [{"device": device, "read_limit": "fast"}]}},
    )
    assert err(r) == (400, "InvalidParameterError") and "read" in r.headers[ERROR_HEADER]
    assert cgroup_text(c, "node2", "blkio.throttle.write_bps_device") == f"{dev} {2 * mib}"

    # vmem soft_limit, live
    r = put("/vnodes/node2/vmem", desc={"mem": "64", "soft_limit": "16"})
    assert (r.status_code, r.content) == (200, b"")
    assert int(cgroup_text(c, "node2", "memory.soft_limit_in_bytes")) == 16 * mib
    assert ok(client.get("/vnodes/node2/vmem"))["soft_limit"] == "16"
    r = put("/vnodes/node2/vmem", desc={"mem": "64", "soft_limit": "128"})
    assert err(r) == (400, "InvalidParameterError") and "soft" in r.headers[ERROR_HEADER]

    # a disk_throttling event: bytes per second for read and write on the rootfs's disk
    vnode = {"type": "vnode", "vnodename": "node2"}
    ok_empty = post(
        "/events/trace", resource=vnode, event_type="disk_throttling", trace={"0.2": str(mib)}
    )
    assert ok_empty.status_code == 200, ok_empty.headers.get(ERROR_HEADER)
    assert post("/eventmanager").status_code == 200
    deadline = time.monotonic() + 10
    while cgroup_text(c, "node2", "blkio.throttle.read_bps_device") != f"{dev} {mib}":
        assert time.monotonic() < deadline, "the disk_throttling event was not applied"
        time.sleep(0.1)
    assert cgroup_text(c, "node2", "blkio.throttle.write_bps_device") == f"{dev} {mib}"
    assert client.delete("/eventmanager").status_code == 200
    # an empty disk_throttling lifts every rule
    fs = ok(put("/vnodes/node2/filesystem", desc={"disk_throttling": {}}))
    assert fs["disk_throttling"] is None
    assert cgroup_text(c, "node2", "blkio.throttle.write_bps_device") == ""
    ok(put("/vnodes", type="stop"))
    ok(put("/vnodes", type="remove"))
