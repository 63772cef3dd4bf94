"""Distem 1.4 wire compatibility on the real kernel: the requests Distem's Ruby client
sends (docs in /work/shared/distem-wire/WIRE_CAPTURE.md), replayed byte for byte
against the in-process coordinator app with ``distem_compat=True``.

TestClient's client address is ``testclient`` by default, which is in no CIDR; we pass
``client=("127.0.0.1", ...)`` to look like a loopback caller (and another one to be refused).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from compat_daemon import distemd, python_distem
from fastapi.testclient import TestClient

import pydistem.testing
from pydistem.agent.service import Agent
from pydistem.coordinator.app import create_app
from pydistem.coordinator.compat.encoding import ERROR_HEADER
from pydistem.coordinator.service import Coordinator
from pydistem.state.store import Store

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.lxc,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("lxc-start") is None, reason="needs the lxc tools"),
]

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LOOPBACK = ("127.0.0.1", 50000)


def form(**fields: object) -> str:
    """A body as rest-client encodes it: Hash/Array as JSON text, strings as is."""
    parts = []
    for key, value in fields.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={quote(text, safe='')}")
    return "&".join(parts)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Coordinator, TestClient]]:
    agent = Agent(tmp_path / "agent", tag=pydistem.testing.unique_tag())
    c = Coordinator(Store(tmp_path / "c.sqlite"), connect=None, local_agent=agent)  # type: ignore[arg-type]
    try:
        app = create_app(c, "tok", distem_compat=True)
        with TestClient(app, client=LOOPBACK) as client:
            yield c, client
    finally:
        try:
            c.quit()
            c.close()
        finally:
            agent.clean()
            agent.close()


def ok(r):  # type: ignore[no-untyped-def]
    assert r.status_code == 200, (r.status_code, r.headers.get(ERROR_HEADER), r.text)
    return r.json()


def test_distem_flow(stack: tuple[Coordinator, TestClient], image: Path) -> None:
    _c, client = stack
    # distem --init-pnode localhost
    pnodes = ok(
        client.post(
            "/pnodes",
            content=form(target=["localhost"], desc={}) + "&async=false",
            headers=FORM,
        )
    )
    assert isinstance(pnodes, list) and len(pnodes) == 1
    assert list(pnodes[0]) == ["id", "address", "cpu", "memory", "status", "algorithms"]
    assert pnodes[0]["status"] == "RUNNING"
    address = pnodes[0]["address"]
    assert list(ok(client.get("/pnodes"))) == [address]
    assert ok(client.get("/pnodes/localhost"))["address"] == address

    net = ok(client.post("/vnetworks", content="name=vnet&address=10.144.0.0%2F22", headers=FORM))
    assert net["address"] == "10.144.0.0/22"

    desc = {
        "vfilesystem": {"image": str(image), "shared": True},
        "vifaces": [{"name": "if0", "vnetwork": "vnet", "default": "true"}],
    }
    body = form(names=["node1", "node2"], desc=desc, ssh_key={}) + "&async=false"
    created = ok(client.post("/vnodes", content=body, headers=FORM))
    assert [v["name"] for v in created] == ["node1", "node2"]
    assert [v["status"] for v in created] == ["INIT", "INIT"]
    assert created[0]["vifaces"][0]["address"] == "10.144.0.1/22"
    assert created[0]["vfilesystem"]["image"] == f"file://{image}"
    assert created[0]["host"] == address
    assert ok(client.get("/vnetworks/vnet"))["vnodes"] == ["node1", "node2"]

    # a duplicate, a missing vnode, a bad type
    r = client.post("/vnodes/node1", content=form(desc={}, ssh_key={}), headers=FORM)
    assert r.status_code == 400 and r.headers[ERROR_HEADER].startswith("AlreadyExisting")
    r = client.put("/vnodes/node9", content="type=update", headers=FORM)
    assert r.status_code == 404 and r.headers[ERROR_HEADER].startswith("ResourceNotFound")
    r = client.put("/vnodes/node1", content="type=jump", headers=FORM)
    assert r.status_code == 400 and r.headers[ERROR_HEADER].startswith("InvalidParameter")
    r = client.post("/vnodes/node1/commands", content="command=hostname", headers=FORM)
    assert r.status_code == 404 and r.json() == {}

    # vnodes_start
    body = form(names=["node1", "node2"], desc={"status": "RUNNING"}) + "&async=false&type=update"
    started = ok(client.put("/vnodes", content=body, headers=FORM))
    assert [v["status"] for v in started] == ["RUNNING", "RUNNING"]
    # wait_vnodes with a port polls it: a server on port 22 stands in for sshd (busybox)
    serve = form(command="httpd -p 22 -h /tmp && echo up")
    assert ok(client.post("/vnodes/node1/commands", content=serve, headers=FORM)) == ["up"]
    assert ok(
        client.post(
            "/wait_vnodes",
            content=form(opts={"vnodes": ["node1"], "timeout": 60, "port": 22}),
            headers=FORM,
        )
    ) == ["true"]
    assert ok(client.post("/wait_vnodes", content=form(opts={}), headers=FORM)) == ["true"]

    assert ok(client.post("/vnodes/node1/commands", content="command=hostname", headers=FORM)) == [
        "node1"
    ]
    lines = ok(
        client.post(
            "/vnodes/node1/commands",
            content="command=hostname+%26%26+echo+%27a%3Db%26c%27",
            headers=FORM,
        )
    )
    assert lines == ["node1", "a=b&c"]
    out = ok(
        client.post(
            "/commands", content=form(names=["node1", "node2"], command="hostname"), headers=FORM
        )
    )
    assert out == {
        "node1": {"out": "node1\n", "err": "", "success": "ok"},
        "node2": {"out": "node2\n", "err": "", "success": "ok"},
    }

    # traffic shaping, Distem style (latency needs sch_netem, absent from some kernels:
    # the latency mapping is covered in tests/unit/test_compat_encoding.py)
    vif = ok(
        client.put(
            "/vnodes/node1/ifaces/if0/output",
            content=form(desc={"bandwidth": {"rate": "10mbps"}}),
            headers=FORM,
        )
    )
    assert vif == {"bandwidth": {"rate": "10mbps"}}
    info = ok(client.get("/vnodes/node1/ifaces/if0"))
    assert info["output"]["bandwidth"] == {"rate": "10mbps"} and info["input"] is None
    assert ok(client.get("/vnodes/node1/ifaces/if0/output"))["bandwidth"]["rate"] == "10mbps"
    r = client.get("/vnodes/node1/ifaces/if0/input")
    assert r.status_code == 404 and r.headers[ERROR_HEADER].startswith("Uninitialized")

    platform = json.loads(client.get("/vplatform").text)
    assert set(platform["vplatform"]) == {"pnodes", "vnodes", "vnetworks"}

    # vnode_stop (array of one), vnode_remove
    stopped = ok(
        client.put(
            "/vnodes/node1",
            content=form(desc={"status": "DOWN"}) + "&async=false&type=stop",
            headers=FORM,
        )
    )
    assert [v["status"] for v in stopped] == ["DOWN"]
    removed = ok(client.put("/vnodes/node1", content="type=remove", headers=FORM))
    assert [v["name"] for v in removed] == ["node1"]
    assert list(ok(client.get("/vnodes"))) == ["node2"]

    # distem -q: everything goes, the daemon stays
    quit_ = ok(client.delete("/pnodes"))
    assert quit_[address]["status"] == "READY"
    assert ok(client.get("/vnodes")) == {} and ok(client.get("/vnetworks")) == {}


def test_viface_create_and_single_vnode(stack: tuple[Coordinator, TestClient], image: Path) -> None:
    _c, client = stack
    ok(client.post("/pnodes", content=form(target="localhost"), headers=FORM))
    ok(client.post("/vnetworks", content="name=vnet&address=10.144.0.0%2F22", headers=FORM))
    body = form(desc={"vfilesystem": {"image": str(image)}, "host": "localhost"}, ssh_key={})
    v = ok(client.post("/vnodes/node1", content=body + "&async=false", headers=FORM))
    assert v["status"] == "INIT" and v["vifaces"] == []
    vif = ok(
        client.post(
            "/vnodes/node1/ifaces",
            content=form(name="if0", desc={"vnetwork": "vnet", "default": "true"}),
            headers=FORM,
        )
    )
    assert vif["address"] == "10.144.0.1/22" and vif["vnode"] == "node1"
    r = client.post(
        "/vnodes/node1/ifaces",
        content=form(name="if1", desc={"address": "10.200.0.1"}),
        headers=FORM,
    )
    assert r.status_code == 400
    started = ok(
        client.put(
            "/vnodes/node1",
            content=form(desc={"status": "RUNNING"}) + "&async=false&type=update",
            headers=FORM,
        )
    )
    assert started["status"] == "RUNNING" and started["name"] == "node1"
    assert ok(client.post("/vnodes/node1/commands", content="command=hostname", headers=FORM)) == [
        "node1"
    ]
    r = client.delete("/vnetworks/vnet")
    assert r.status_code == 404 and r.headers[ERROR_HEADER].startswith("BusyResourceError")
    ok(client.put("/vnodes", content="type=remove", headers=FORM))
    assert ok(client.delete("/vnetworks/vnet"))["name"] == "vnet"


def test_refused_outside_the_allow_list(tmp_path: Path) -> None:
    c = Coordinator(Store(tmp_path / "c.sqlite"), connect=None, local_agent=None)  # type: ignore[arg-type]
    try:
        app = create_app(c, "tok", distem_compat=True)
        far = TestClient(app, client=("192.0.2.7", 50000))
        r = far.get("/vnodes")
        assert (r.status_code, r.json()) == (403, {})
        assert r.headers[ERROR_HEADER].startswith("ForbiddenError 192.0.2.7")
        assert TestClient(create_app(c, "tok"), client=LOOPBACK).get("/vnodes").status_code == 404
    finally:
        c.close()


@pytest.fixture
def distemd_port(tmp_path: Path) -> Iterator[int]:
    with distemd(tmp_path / "state") as port:
        yield port


def test_python_distem_client_against_distemd(distemd_port: int, image: Path) -> None:
    """Every call of the PyPI ``distem`` 0.0.5 client (requests, trailing slashes, its
    own quirks) but vcpu/vmem (below), against a real distemd with LXC vnodes."""
    d = python_distem(distemd_port)
    (pnode,) = d.pnode_init(["localhost"])
    assert pnode["status"] == "RUNNING"
    assert d.pnode_info("localhost")["address"] == pnode["address"]
    assert list(d.pnodes_info()) == [pnode["address"]]
    assert d.vnetwork_create("vnet", "10.144.0.0/22")["address"] == "10.144.0.0/22"
    assert d.vnetwork_info("vnet")["name"] == "vnet"
    desc = {
        "vfilesystem": {"image": str(image), "shared": True},
        "vifaces": [{"name": "if0", "vnetwork": "vnet", "default": "true"}],
    }
    created = d.vnodes_create(["node1", "node2"], desc)
    assert [v["status"] for v in created] == ["INIT", "INIT"]
    one = d.vnode_create("node3", {"vfilesystem": {"image": str(image)}})
    assert one["name"] == "node3" and one["vifaces"] == []
    assert d.vfilesystem_info("node3")["image"] == f"file://{image}"
    d.vfilesystem_update("node3", {"image": str(image), "shared": "true"})
    assert d.vfilesystem_info("node3")["shared"] is True
    with pytest.raises(Exception, match="AlreadyExistingResourceError"):
        d.vfilesystem_create("node3", {"image": str(image)})
    vif = d.viface_create("node3", "if0", {"vnetwork": "vnet"})
    assert vif["address"] == "10.144.0.3/22"
    assert d.viface_info("node3", "if0")["vnetwork"] == "vnet"
    assert d.vnode_start("node1")["status"] == "RUNNING"
    assert [v["status"] for v in d.vnodes_start(["node2", "node3"])] == ["RUNNING"] * 2
    assert d.vnode_execute("node1", "hostname") == ["node1"]
    out = d.vnodes_execute(["node1", "node2"], "hostname")
    assert out["node2"] == {"out": "node2\n", "err": "", "success": "ok"}
    assert d.vnode_info("node2")["vifaces"][0]["address"] == "10.144.0.2/22"
    assert set(d.vnodes_info()) == {"node1", "node2", "node3"}
    # traffic: bandwidth works on every kernel (HTB)
    assert d.vinput_update("node1", "if0", {"bandwidth": {"rate": "20mbps"}}) == {
        "bandwidth": {"rate": "20mbps"}
    }
    assert d.vinput_info("node1", "if0") == {"bandwidth": {"rate": "20mbps"}}
    d.voutput_update("node1", "if0", {"bandwidth": {"rate": "5mbps"}})
    assert d.voutput_info("node1", "if0") == {"bandwidth": {"rate": "5mbps"}}
    both = d.viface_update("node1", "if0", {"output": {"bandwidth": {"rate": "1mbps"}}})
    assert both["output"] == {"bandwidth": {"rate": "1mbps"}}
    assert both["input"] == {"bandwidth": {"rate": "20mbps"}}
    with pytest.raises(Exception, match="ResourceNotFoundError"):
        d.vnode_info("node9")
    assert [v["status"] for v in d.vnode_freeze("node1")] == ["FROZEN"]
    assert [v["status"] for v in d.vnode_unfreeze("node1")] == ["RUNNING"]
    assert {v["status"] for v in d.vnodes_freeze()} == {"FROZEN"}  # [] means all
    assert {v["status"] for v in d.vnodes_unfreeze(["node1", "node2", "node3"])} == {"RUNNING"}
    assert [v["status"] for v in d.vnode_stop("node1")] == ["DOWN"]
    assert {v["status"] for v in d.vnodes_stop()} == {"DOWN"}
    d.viface_remove("node3", "if0")
    assert d.vnode_info("node3")["vifaces"] == []
    assert [v["name"] for v in d.vnode_remove("node3")] == ["node3"]
    assert {v["name"] for v in d.vnodes_remove()} == {"node1", "node2"}
    assert d.vnodes_info() == {}
    assert d.vnetwork_remove("vnet")["name"] == "vnet"
    assert d.pnode_quit("localhost")["status"] == "READY"
    assert d.pnodes_info() == {}
    d.pnode_init(["localhost"])
    (quit_,) = d.pnodes_quit().values()
    assert quit_["status"] == "READY"


def test_python_distem_vcpu_vmem(distemd_port: int, image: Path) -> None:
    d = python_distem(distemd_port)
    d.pnode_init(["localhost"])
    d.vnode_create("node1", {"vfilesystem": {"image": str(image)}})
    assert list(d.vcpu_create("node1", 0.5, "ratio", 1)) == ["pcpu", "vcores"]
    d.vcpu_update("node1", 0.25, "ratio")
    assert list(d.vcpu_info("node1")) == ["pcpu", "vcores"]
    d.vcpu_remove("node1")
    d.vmem_create("node1", 256)
    d.vmem_update("node1", {"mem": 128})
    assert d.vnode_info("node1")["vmem"]["mem"] == "128"
