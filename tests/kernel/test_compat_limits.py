"""Distem's vcpu and vmem over the wire: raw form requests against the in-process
compat app (every route, incl. the two that answered 500 on Distem's coordinator), then
the PyPI ``distem`` client, pydistem's own client and CLI against a real distemd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_compat_wire import FORM, distemd_port, form, image, ok, stack  # noqa: F401 - fixtures

from pydistem.client import Client
from pydistem.coordinator import limits
from pydistem.coordinator.compat.encoding import ERROR_HEADER
from pydistem.coordinator.service import Coordinator
from pydistem.errors import ValidationError

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
