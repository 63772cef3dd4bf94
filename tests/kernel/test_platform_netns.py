"""The whole stack in one process on the real kernel, with ``netns`` vnodes:
coordinator REST app -> coordinator -> agent -> pyroute2/cgroups."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pydistem.agent.service import Agent
from pydistem.coordinator.app import create_app
from pydistem.coordinator.service import Coordinator
from pydistem.errors import Conflict
from pydistem.model.specs import VNode
from pydistem.state.store import Store
from pydistem.testing import unique_tag

pytestmark = pytest.mark.kernel

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def platform(n: int = 3) -> dict:
    return {
        "vnetworks": [{"name": "net0", "address": "10.144.0.0/22"}],
        "vnodes": [
            {
                "name": f"node-[1-{n}]",
                "runtime": "netns",
                "vifaces": [{"name": "if0", "vnetwork": "net0"}],
            },
            {
                "name": "probe",
                "runtime": "netns",
                "vifaces": [{"name": "if0", "vnetwork": "net0", "address": "10.144.0.200"}],
            },
        ],
    }


@pytest.fixture
def api(coordinator: Coordinator, kernel_unchanged) -> TestClient:
    return TestClient(create_app(coordinator, TOKEN), headers=AUTH)


def test_token_is_required(coordinator: Coordinator) -> None:
    client = TestClient(create_app(coordinator, TOKEN))
    r = client.get("/api/v1/vnodes")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    r = client.get("/api/v1/vnodes", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert client.get("/api/v1/health").status_code == 200


def test_deploy_ping_execute_stop_start_quit(api: TestClient) -> None:
    r = api.post("/api/v1/platform", json=platform())
    assert r.status_code == 200, r.text
    vnodes = {v["name"]: v for v in r.json()["vnodes"]}
    assert [v["status"] for v in vnodes.values()] == ["RUNNING"] * 4
    assert vnodes["node-1"]["vifaces"][0]["address"] == "10.144.0.1"
    assert vnodes["node-3"]["vifaces"][0]["address"] == "10.144.0.3"
    assert api.post("/api/v1/wait", json={"timeout": 10}).json() == {"ready": True, "pending": []}

    # every vnode reaches every other by name (/etc/hosts) through the bridge
    for src in vnodes:
        r = api.post(
            "/api/v1/vnodes/execute",
            json={
                "names": [src],
                "command": "for h in node-1 node-2 node-3 probe; "
                "do ping -c1 -W2 $h >/dev/null || echo $h; done",
            },
        )
        assert r.json()[src] == {"stdout": "", "stderr": "", "exit_code": 0}

    r = api.post(
        "/api/v1/vnodes/node-2/execute", json={"command": ["sh", "-c", "hostname; exit 3"]}
    )
    assert r.json() == {"stdout": "node-2\n", "stderr": "", "exit_code": 3}

    r = api.post("/api/v1/vnodes/stop", json={"names": ["node-2"]})
    assert r.json()["results"] == {"node-2": None}
    assert api.get("/api/v1/vnodes/node-2").json()["status"] == "DOWN"
    r = api.post("/api/v1/vnodes/node-2/execute", json={"command": "true"})
    assert r.status_code == 409
    r = api.post("/api/v1/vnodes/node-1/execute", json={"command": "ping -c1 -W1 node-2"})
    assert r.json()["exit_code"] != 0  # a stopped vnode is unreachable
    api.post("/api/v1/vnodes/start", json={"names": ["node-2"]})
    r = api.post("/api/v1/vnodes/node-2/execute", json={"command": "ping -c1 -W2 probe"})
    assert r.json()["exit_code"] == 0

    r = api.post("/api/v1/quit")
    assert r.status_code == 200
    assert api.get("/api/v1/vnodes").json() == []


def test_processes_die_with_their_vnode(api: TestClient) -> None:
    api.post("/api/v1/platform", json=platform(1))
    api.post(
        "/api/v1/vnodes/node-1/execute", json={"command": "(sleep 300 >/dev/null 2>&1 &) ; true"}
    )
    r = api.post("/api/v1/vnodes/probe/execute", json={"command": "true"})
    assert r.status_code == 200
    api.post("/api/v1/vnodes/stop", json={"names": ["node-1"]})
    # the background sleep was in node-1's cgroup and is gone: quit must not hang either
    api.post("/api/v1/quit")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (
            {"vnodes": [{"name": "a", "runtime": "netns"}, {"name": "a", "runtime": "netns"}]},
            "vnodes[1].name",
        ),
        ({"vnetworks": [{"name": "n", "address": "10.0.0.0/33"}]}, "vnetworks[0].address"),
        (
            {
                "vnetworks": [{"name": "n", "address": "10.0.0.0/24"}],
                "vnodes": [
                    {
                        "name": "a",
                        "runtime": "netns",
                        "vifaces": [{"name": "if0", "vnetwork": "n", "address": "10.9.0.1"}],
                    }
                ],
            },
            "vnodes[0].vifaces[0].address",
        ),
        ({"vnodes": [{"name": "bad;rm -rf", "runtime": "netns"}]}, "vnodes[0].name"),
        ({"vnodes": [{"name": "a" * 70, "runtime": "netns"}]}, "vnodes[0].name"),
        (
            {"vnodes": [{"name": "a", "runtime": "lxc", "image": "file:///nonexistent/i.tar.gz"}]},
            "vnodes[0].vfilesystem.image",
        ),
        (
            {"vnodes": [{"name": "a", "runtime": "lxc", "image": "file:///x/../y.tar.gz"}]},
            "vnodes[0].vfilesystem.image",
        ),
        (
            {"vnodes": [{"name": "a", "runtime": "netns", "host": "no-such-pnode.invalid"}]},
            "vnodes[0].host",
        ),
        ({"vnodes": [{"name": "a", "runtime": "docker"}]}, "vnodes[0].runtime"),
        (
            {
                "vnodes": [
                    {
                        "name": "a",
                        "runtime": "netns",
                        "vifaces": [{"name": "if0", "vnetwork": "nope"}],
                    }
                ]
            },
            "vnodes[0].vifaces[0].vnetwork",
        ),
    ],
)
def test_bad_input_names_the_field_and_creates_nothing(
    api: TestClient, doc: dict, field: str
) -> None:
    api.post("/api/v1/vnetworks", json={"name": "keep", "address": "10.200.0.0/24"})
    api.post("/api/v1/pnodes", json={"targets": ["localhost"]})
    before = api.get("/api/v1/platform").json()
    r = api.post("/api/v1/platform", json=doc)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["ok"] is False and body["field"] == field, body
    assert api.get("/api/v1/platform").json() == before


def test_duplicate_and_overlapping_vnetworks(api: TestClient) -> None:
    assert (
        api.post("/api/v1/vnetworks", json={"name": "a", "address": "10.1.0.0/16"}).status_code
        == 200
    )
    r = api.post("/api/v1/vnetworks", json={"name": "a", "address": "10.2.0.0/16"})
    assert (r.status_code, r.json()["error"], r.json()["field"]) == (400, "already_exists", "name")
    r = api.post("/api/v1/vnetworks", json={"name": "b", "address": "10.1.5.0/24"})
    assert (r.status_code, r.json()["field"]) == (400, "address")
    assert api.get("/api/v1/vnetworks/nope").status_code == 404


def test_restarted_coordinator_knows_its_platform(tmp_path: Path, kernel_unchanged) -> None:
    tag = unique_tag()
    agent = Agent(tmp_path / "agent", tag=tag)
    store = Store(tmp_path / "c.sqlite")
    c = Coordinator(store, connect=None, local_agent=agent)  # type: ignore[arg-type]
    try:
        c.deploy(platform(2))
        c.close()
        store.close()
        # a new coordinator process: same state file, same agent state dir
        store = Store(tmp_path / "c.sqlite")
        c = Coordinator(store, connect=None, local_agent=agent)  # type: ignore[arg-type]
        assert sorted(c.vnodes) == ["node-1", "node-2", "probe"]
        assert c.vnodes["node-2"].status == "RUNNING"
        assert c.vnode_execute("node-1", "ping -c1 -W2 node-2").exit_code == 0
        # new vnodes do not reuse addresses of the reloaded ones
        (v,) = c.vnodes_create(
            [{"name": "late", "runtime": "netns", "vifaces": [{"name": "if0", "vnetwork": "net0"}]}]
        )
        assert v.vifaces[0].address == "10.144.0.3"
    finally:
        c.quit()
        store.close()
        agent.close()


def test_restarted_agent_knows_its_netns_vnodes(tmp_path: Path, kernel_unchanged) -> None:
    """The specs and running marks live in two SQLite files, no file per vnode."""
    tag = unique_tag()
    state = tmp_path / "agent"
    agent = Agent(state, tag=tag)
    c = Coordinator(Store(":memory:"), connect=None, local_agent=agent)  # type: ignore[arg-type]
    again: Agent | None = None
    try:
        c.deploy(platform(2))
        c.vnodes_stop(["node-2"])
        assert not (state / "vnodes").exists()  # netns vnodes without limits: no folder
        agent.close()
        again = Agent(state, tag=tag)  # a new agent process on the same state
        assert again.vnodes_status() == {"node-1": "RUNNING", "node-2": "DOWN", "probe": "RUNNING"}
        res = again.vnode_execute("node-1", "hostname; grep -q node-2 /etc/hosts && echo hosts")
        assert (res.exit_code, res.stdout.split()) == (0, ["node-1", "hosts"])
        assert again.vnode_execute("node-1", "ping -c1 -W2 probe").exit_code == 0
        with pytest.raises(Conflict):
            again.vnode_execute("node-2", "true")
    finally:
        survivor = again or agent
        report = survivor.clean()
        assert not report.failed
        assert survivor.vnodes_status() == {}
        survivor.close()
    fresh = Agent(state, tag=tag)  # cleaned: nothing known, nothing marked running
    try:
        assert fresh.vnodes_status() == {}
        assert fresh.runtime("netns").is_running(fresh._ctx(fresh_vnode())) is False
    finally:
        fresh.close()


def fresh_vnode() -> VNode:
    return VNode.model_validate({"name": "node-1", "runtime": "netns"})


def test_clean_after_agent_crash_removes_everything(tmp_path: Path, kernel_unchanged) -> None:
    tag = unique_tag()
    agent = Agent(tmp_path / "agent", tag=tag)
    c = Coordinator(Store(":memory:"), connect=None, local_agent=agent)  # type: ignore[arg-type]
    c.deploy(platform(3))
    c.vnode_execute("node-1", "(sleep 600 >/dev/null 2>&1 &); true")
    # the agent "crashes": no orderly removal, its in-memory state is lost
    agent.journal.close()
    del c, agent
    survivor = Agent(tmp_path / "agent", tag=tag)
    report = survivor.clean()
    survivor.close()
    assert not report.failed
    assert any(r.startswith("netns:") for r in report.removed)
    assert any(r.startswith("cgroup:") for r in report.removed)
