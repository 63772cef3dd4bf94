"""Distem compat pieces that need no kernel: the pnode /etc/hosts block, the peers
latency plan, the vfilesystem mapping and the loose-key handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydistem.agent import etchosts
from pydistem.agent.journal import Journal
from pydistem.coordinator import platform_tables
from pydistem.coordinator.compat import shapes
from pydistem.coordinator.compat.encoding import DistemError
from pydistem.coordinator.service import Coordinator
from pydistem.errors import Conflict, NotFound, ValidationError
from pydistem.model.specs import VNetwork, VNode
from pydistem.state.store import Store

HOSTS = "127.0.0.1 localhost\n10.0.0.1 gw # keep me\n"


def test_hosts_block_is_added_replaced_and_removed_alone() -> None:
    one = etchosts.with_block(HOSTS, "t1", ["10.144.0.1 n1"])
    two = etchosts.with_block(one, "t2", ["10.150.0.1 m1"])
    again = etchosts.with_block(two, "t1", ["10.144.0.2 n2"])
    assert "10.144.0.1 n1" not in again and "10.144.0.2 n2" in again and "m1" in again
    assert etchosts.without_block(etchosts.without_block(again, "t1"), "t2") == HOSTS
    assert etchosts.with_block("no newline", "t", []) == "no newline"


def test_hosts_block_is_journaled_and_cleaned(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    journal = Journal(tmp_path / "j.jsonl")
    etchosts.write_block(hosts, "t1", ["10.144.0.1 n1"], journal)
    assert "# BEGIN pydistem t1" in hosts.read_text()
    (entry,) = journal.live(etchosts.KIND)
    etchosts.clean_etchosts(entry)
    etchosts.clean_etchosts(entry)  # idempotent
    assert hosts.read_text() == HOSTS
    journal.close()


@pytest.fixture
def coordinator(tmp_path: Path) -> Coordinator:
    c = Coordinator(Store(tmp_path / "c.sqlite"), connect=None, local_agent=None)  # type: ignore[arg-type]
    c.vnets["a"] = VNetwork(name="a", address="10.144.0.0/24")
    c.vnets["b"] = VNetwork(name="b", address="10.145.0.0/24")
    for i, nets in enumerate([["a"], ["b", "a"], ["a"]], start=1):
        vifaces = [
            {"name": f"if{j}", "vnetwork": n, "address": f"10.{144 + (n == 'b')}.0.{i}"}
            for j, n in enumerate(nets)
        ]
        c.vnodes[f"n{i}"] = VNode.model_validate(
            {"name": f"n{i}", "host": "localhost", "status": "RUNNING", "vifaces": vifaces}
        )
    return c


def test_peers_latency_plan(coordinator: Coordinator) -> None:
    plan = platform_tables.plan_peers_latencies(
        coordinator, ["n1", "n2", "n3"], [[0, 10, "0.5"], [20, 0, 0], [0, 0, 0]]
    )
    rules = plan["localhost"]
    # n2's first viface is on b: n1 and n3 have no address on b, their default is used
    assert rules["n1"] == {
        "viface": "if0",
        "latencies": {"10.144.0.2": "10ms", "10.144.0.3": "0.5ms"},
    }
    assert rules["n2"] == {"viface": "if0", "latencies": {"10.144.0.1": "20ms"}}
    assert rules["n3"] == {"viface": "if0", "latencies": {}}


@pytest.mark.parametrize(
    ("names", "matrix", "error", "text"),
    [
        (["n1", "n2"], [[0, 1]], ValidationError, "matrix"),
        (["n1", "n2"], [[0, 1], [1]], ValidationError, "matrix[1]"),
        (["n1", "n2"], [[0, -1], [1, 0]], ValidationError, "matrix[0][1]"),
        (["n1", "n2"], [[0, "x"], [1, 0]], ValidationError, "matrix[0][1]"),
        (["n1", "n9"], [[0, 1], [1, 0]], NotFound, "n9"),
    ],
)
def test_peers_latency_plan_refuses(
    coordinator: Coordinator, names: list[str], matrix: object, error: type, text: str
) -> None:
    with pytest.raises(error, match=text.replace("[", r"\[").replace("]", r"\]")):
        platform_tables.plan_peers_latencies(coordinator, names, matrix)


def test_peers_latency_needs_running_vnodes(coordinator: Coordinator) -> None:
    coordinator.vnodes["n2"].status = "DOWN"
    with pytest.raises(Conflict, match="n2"):
        platform_tables.plan_peers_latencies(coordinator, ["n1", "n2"], [[0, 1], [1, 0]])


def test_vfilesystem_mapping() -> None:
    f = shapes.vfilesystem_desc
    assert f({"image": "/i.tgz"}, "fs") == {"image": "/i.tgz", "shared": True}
    assert f({"image": "/i.tgz", "shared": "false"}, "fs")["shared"] is False
    assert f({"image": "/i.tgz", "cow": "true", "shared": False}, "fs")["shared"] is True
    assert f({"image": "/i.tgz", "shared": True, "path": "/x", "extra": 1}, "fs")["shared"]
    # disk_throttling is the vnode's disk limit, not part of its VFilesystem
    fs = {"image": "/i.tgz", "disk_throttling": {"limits": [{"device": "/dev/sda"}]}}
    assert f(fs, "fs") == {"image": "/i.tgz", "shared": True}
    with pytest.raises(DistemError) as err:
        f({"shared": True}, "fs")
    assert err.value.status == 400


def test_unknown_desc_keys_are_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    doc = shapes.vnode_desc(
        "n1",
        {
            "vfilesystem": {"image": "/i.tgz"},
            "colour": "blue",
            "vifaces": [{"name": "if0", "id": "3"}],
        },
        None,
    )
    assert doc["vifaces"] == [{"name": "if0"}] and "colour" not in doc
    assert "colour" in caplog.text and "id" in caplog.text
