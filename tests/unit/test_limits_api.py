"""The limit routes without a kernel: REST (/api/v1/vnodes/{name}/cpu|memory|limits) on a
vnode not started yet, and the agent's routes through HttpAgentLink (errors mapped back)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pydistem.agent.app import create_agent_app
from pydistem.agent.service import Agent
from pydistem.coordinator.agents import HttpAgentLink
from pydistem.coordinator.app import create_app
from pydistem.coordinator.service import Coordinator
from pydistem.errors import NotFound, ValidationError
from pydistem.model.limits import CpuLimit
from pydistem.state.store import Store
from pydistem.testing import unique_tag


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Coordinator, TestClient, Agent]]:
    agent = Agent(tmp_path / "agent", tag=unique_tag())
    c = Coordinator(Store(tmp_path / "c.sqlite"), connect=None, local_agent=agent)  # type: ignore[arg-type]
    try:
        c.vnodes_create([{"name": "n1", "runtime": "netns"}])  # INIT: nothing built
        yield c, TestClient(create_app(c, None)), agent
    finally:
        c.close()
        agent.close()


def test_cpu_and_memory_routes_on_a_vnode_not_started(stack) -> None:  # type: ignore[no-untyped-def]
    c, api, _ = stack
    cores = c.pnodes["localhost"].cores
    r = api.post("/api/v1/vnodes/n1/cpu", json={"cores": cores + 1, "frequency": 0.5})
    assert r.status_code == 400 and r.json()["field"] == "cpu.cores", r.json()
    assert api.get("/api/v1/vnodes/n1/cpu").json()["error"] == "not_found"
    r = api.post("/api/v1/vnodes/n1/cpu", json={"cores": 1, "frequency": "50%"})
    assert r.json() == {"cores": 1, "frequency": 0.5, "pcores": None}
    r = api.post("/api/v1/vnodes/n1/cpu", json={"cores": 1})
    assert r.status_code == 400 and r.json()["error"] == "already_exists"
    r = api.put("/api/v1/vnodes/n1/cpu", json={"frequency": 0})
    assert r.status_code == 400 and r.json()["field"] == "cpu.frequency"
    assert api.put("/api/v1/vnodes/n1/cpu", json={"frequency": 0.25}).json()["cores"] == 1
    assert c.vnodes["n1"].cpu == CpuLimit(cores=1, frequency=0.25)
    r = api.put("/api/v1/vnodes/n1/memory", json={"limit": "12parsecs"})
    assert r.status_code == 400 and r.json()["field"] == "memory.limit"
    assert api.put("/api/v1/vnodes/n1/memory", json="256MiB").json()["limit"] == "256MiB"
    info = api.get("/api/v1/vnodes/n1/limits").json()
    assert info["cpu"]["frequency"] == 0.25 and info["memory"]["limit"] == "256MiB"
    assert api.delete("/api/v1/vnodes/n1/memory").json()["limit"] == "256MiB"
    assert api.delete("/api/v1/vnodes/n1/cpu").json()["frequency"] == 0.25
    assert c.vnodes["n1"].cpu is None and c.vnodes["n1"].memory is None
    assert api.get("/api/v1/vnodes/n9/memory").status_code == 404
    # the event player's hooks name fields inside cpu
    with pytest.raises(ValidationError) as err:
        c.vnode_cpu_check("n1", {"frequency": "99GHz"})
    assert err.value.field == "frequency" and "MHz" in err.value.reason


def test_agent_limit_routes_through_the_http_link(stack) -> None:  # type: ignore[no-untyped-def]
    _, _, agent = stack
    link = HttpAgentLink("localhost", "http://agent", "tok")
    link._http = TestClient(
        create_agent_app(agent, "tok"),
        base_url="http://agent/api/v1/agent",
        headers={"Authorization": "Bearer tok"},
    )
    with pytest.raises(NotFound) as err:  # the agent has not built n1
        link.vnode_limits("n1", CpuLimit(cores=1), None)
    assert err.value.kind == "vnode"
    r = link._http.put("/vnodes/n1/limits", json={"cpu": {"frequency": 2}})
    assert r.status_code == 400 and r.json()["field"] == "cpu.frequency"
    assert link.info()["cpu_mhz"] >= 0
