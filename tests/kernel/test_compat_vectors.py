"""Every request of Distem's wire capture, replayed byte for byte over HTTP against a real
``distemd -d --distem-compat`` with LXC vnodes: the documented status and shape.

The vectors (data/distem_wire_vectors.yaml) run in file order on one daemon: together
they build, use and remove a platform. Vectors of routes another helper is adding carry
``owner`` and are xfail(strict) until those routes land on main.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from compat_daemon import FORM, RUBY_HEADERS, distemd, www_form

from pydistem.agent import etchosts
from pydistem.coordinator.compat.encoding import ERROR_HEADER
from pydistem.images.build import build_busybox
from pydistem.plugins.shapers.htb import HtbShaper

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.lxc,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("lxc-start") is None, reason="needs the lxc tools"),
]

VECTORS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "distem_wire_vectors.yaml").read_text()
)
#: the image paths the captured requests name
IMAGES = (Path("/tmp/img.tgz"), Path("/tmp/i.tgz"))
TAG = "wirev"


def _param(v: dict[str, Any]) -> Any:
    marks = []
    if v.get("owner"):
        marks.append(pytest.mark.xfail(strict=True, reason=f"route lands with {v['owner']}"))
    return pytest.param(v, id=v["name"], marks=marks)


@pytest.fixture(scope="module")
def kernel_lock() -> Iterator[None]:
    """The host-wide kernel-test lock (tests/conftest.py), held for the whole replay: the
    vectors build one platform together, no other checkout may interleave."""
    lock = Path("/run/lock/pydistem-kernel-tests.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def one_kernel_test_at_a_time(kernel_lock: None) -> Iterator[None]:
    """Replaces the per-test lock of tests/conftest.py: the module holds it (above)."""
    yield


@pytest.fixture(scope="module")
def daemon(kernel_lock: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    for p in IMAGES:
        if p.exists() or p.is_symlink():
            pytest.skip(f"{p} exists: the captured requests need that path for their image")
    image = build_busybox(tmp_path_factory.mktemp("img") / "bb.tar.gz")
    try:
        for p in IMAGES:
            p.symlink_to(image)
        with (
            distemd(tmp_path_factory.mktemp("distemd"), TAG) as port,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300, trust_env=False) as h,
        ):
            yield h
    finally:
        for p in IMAGES:
            if p.is_symlink():
                p.unlink()


@pytest.fixture(scope="module")
def netem() -> bool:
    return HtbShaper().probe()["sch_netem"]


# ---------------------------------------------------------------------------- shapes
PNODE_KEYS = ["id", "address", "cpu", "memory", "status", "algorithms"]
VNODE_KEYS = ["id", "name", "status", "vfilesystem", "vifaces", "vcpu", "vmem", "mode"]
VNODE_KEYS += ["host", "ssh_key"]
VIFACE_KEYS = ["id", "name", "vnode", "address", "macaddress", "vnetwork", "input", "output"]
VIFACE_KEYS += ["bridge"]
VNETWORK_KEYS = ["name", "address", "vnodes", "vroutes", "opts"]
VFS_KEYS = ["image", "shared", "path", "sharedpath", "cow", "disk_throttling"]
TRAFFIC = {"bandwidth", "latency", "loss", "corruption", "duplication", "reordering"}


def pnode(x: Any) -> None:
    assert list(x) == PNODE_KEYS
    assert set(x["memory"]) == {"capacity", "swap", "max_mem_usage", "max_swap_usage"}
    assert x["status"] in ("INIT", "CONFIGURING", "RUNNING", "READY")


def viface(x: Any) -> None:
    assert list(x) == VIFACE_KEYS
    assert "/" in x["address"], "a viface address carries its prefix"


def vnode(x: Any) -> None:
    assert list(x) == VNODE_KEYS
    assert x["status"] in ("INIT", "CONFIGURING", "RUNNING", "DOWN", "FROZEN")
    assert x["mode"] in ("NORMAL", "GATEWAY")
    for i in x["vifaces"]:
        viface(i)
    if x["vfilesystem"] is not None:
        vfilesystem(x["vfilesystem"])


def vnetwork(x: Any) -> None:
    assert list(x) == VNETWORK_KEYS
    assert isinstance(x["vnodes"], list) and isinstance(x["vroutes"], dict)


def vfilesystem(x: Any) -> None:
    assert list(x) == VFS_KEYS
    assert x["image"].startswith("file://")


def vtraffic(x: Any) -> None:
    assert isinstance(x, dict) and x and set(x) <= TRAFFIC


def vcpu(x: Any) -> None:
    assert list(x) == ["pcpu", "vcores"] and isinstance(x["vcores"], dict)


def vmem(x: Any) -> None:
    assert list(x) == ["mem", "swap", "hierarchy", "soft_limit", "hard_limit"]


def keyed(check: Any, key: str) -> Any:
    def run(x: Any) -> None:
        assert isinstance(x, dict)
        for k, item in x.items():
            check(item)
            assert item[key] == k, f"collections are keyed by {key}"

    return run


def listed(check: Any) -> Any:
    def run(x: Any) -> None:
        assert isinstance(x, list)
        for item in x:
            check(item)

    return run


def vplatform(x: Any) -> None:
    assert list(x) == ["vplatform"]
    assert list(x["vplatform"]) == ["pnodes", "vnodes", "vnetworks"]
    keyed(pnode, "address")(x["vplatform"]["pnodes"])
    keyed(vnode, "name")(x["vplatform"]["vnodes"])
    keyed(vnetwork, "name")(x["vplatform"]["vnetworks"])


def lines(x: Any) -> None:
    assert isinstance(x, list) and all(isinstance(s, str) for s in x) and x


def commands(x: Any) -> None:
    assert isinstance(x, dict) and x
    for item in x.values():
        assert list(item) == ["out", "err", "success"] and item["success"] in ("ok", "ko")


def wait_true(x: Any) -> None:
    assert x == ["true"]


def probes(x: Any) -> None:
    """``{pnode hostname: {probe name: [[time, [values...]], ...]}}``; the vector's probe
    is ``bw`` (it may have no sample yet: the first rate needs two readings)."""
    assert isinstance(x, dict) and x
    for series in x.values():
        assert list(series) == ["bw"]
        for t, values in series["bw"]:
            assert isinstance(t, float) and len(values) == 2


SHAPES = {
    "pnode": pnode,
    "pnode_list": listed(pnode),
    "pnode_map": keyed(pnode, "address"),
    "vnode": vnode,
    "vnode_list": listed(vnode),
    "vnode_map": keyed(vnode, "name"),
    "viface": viface,
    "vnetwork": vnetwork,
    "vnetwork_map": keyed(vnetwork, "name"),
    "vfilesystem": vfilesystem,
    "vtraffic": vtraffic,
    "vcpu": vcpu,
    "vmem": vmem,
    "vplatform": vplatform,
    "lines": lines,
    "commands": commands,
    "wait_true": wait_true,
    "probes": probes,
}


def send(h: httpx.Client, v: dict[str, Any]) -> httpx.Response:
    headers = dict(RUBY_HEADERS)
    body = None
    if "fields" in v:
        headers["Content-Type"] = FORM
        body = www_form([(k, val) for k, val in v["fields"]]).encode()
    return h.request(v["method"], v["path"], content=body, headers=headers)


# ---------------------------------------------------------------------------- the replay
@pytest.mark.parametrize("vector", [_param(v) for v in VECTORS])
def test_wire_vector(daemon: httpx.Client, netem: bool, vector: dict[str, Any]) -> None:
    r = send(daemon, vector)
    status = vector["netem"] if netem and "netem" in vector else vector["status"]
    where = f"{vector['method']} {vector['path']}"
    assert r.status_code == status, (where, r.status_code, r.headers.get(ERROR_HEADER), r.text)
    assert r.headers["content-type"].startswith("application/json")
    if status != 200:
        assert r.json() == {}
        name = r.headers[ERROR_HEADER].split(" ", 1)[0]
        assert name == vector["error"], r.headers[ERROR_HEADER]
        assert r.headers[ERROR_HEADER].endswith(" |")
        if status == 501 and "netem" in vector:
            assert "sch_netem" in r.headers[ERROR_HEADER]
        return
    shape = vector.get("shape", "empty")
    if shape == "empty":
        assert r.content == b""
        return
    body = json.loads(r.content)
    SHAPES[shape](body)
    if "statuses" in vector:
        assert [x["status"] for x in body] == vector["statuses"]
    if "lines" in vector:
        assert body == vector["lines"]
    if "mode" in vector:
        assert body["mode"] == vector["mode"]


def test_quit_removed_the_hosts_block(daemon: httpx.Client) -> None:
    """The last vectors quit: the marked block of the pnode's /etc/hosts is gone."""
    begin, _end = etchosts.markers(TAG)
    assert begin not in Path("/etc/hosts").read_text()
    assert daemon.get("/vnodes").json() == {}
