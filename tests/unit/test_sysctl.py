"""Sysctl raising and restoring, on a fake /proc/sys tree (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydistem.agent import sysctl
from pydistem.agent.journal import Journal


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sysctl, "PROC", tmp_path)
    monkeypatch.setattr(sysctl, "CLAIMS", tmp_path / "claims")
    (tmp_path / "net/core").mkdir(parents=True)
    (tmp_path / "net/core/netdev_max_backlog").write_text("1000\n")
    return tmp_path / "net/core/netdev_max_backlog"


def test_raise_then_restore_the_first_original(proc: Path, tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    sysctl.ensure_at_least("net.core.netdev_max_backlog", 500, j)
    assert j.live() == []  # already high enough: untouched
    sysctl.ensure_at_least("net.core.netdev_max_backlog", 6400, j)
    sysctl.ensure_at_least("net.core.netdev_max_backlog", 12800, j)
    assert proc.read_text() == "12800"
    (entry,) = j.live("sysctl")
    assert (entry.data["original"], entry.data["value"]) == (1000, 12800)
    sysctl.clean_sysctl(entry)
    assert proc.read_text() == "1000"


def test_a_value_changed_by_someone_else_is_left_alone(proc: Path, tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    sysctl.ensure_at_least("net.core.netdev_max_backlog", 6400, j)
    proc.write_text("20000")  # another agent raised it further
    sysctl.clean_sysctl(j.live("sysctl")[0])
    assert proc.read_text() == "20000"


def _default_neigh_tables(root: Path) -> None:
    for table in sysctl.NEIGH_TABLES:
        d = root / table.replace(".", "/")
        d.mkdir(parents=True)
        for n, default in (("1", 128), ("2", 512), ("3", 1024)):
            (d / f"gc_thresh{n}").write_text(f"{default}\n")


def test_neighbour_tables_sized_for_the_largest_vnetwork(proc: Path, tmp_path: Path) -> None:
    _default_neigh_tables(tmp_path)
    j = Journal(tmp_path / "journal")
    # 100 vifaces on net0, 10 on net1: 100*100 + 10*10 neighbour entries at most
    sysctl.size_for_platform(["net0"] * 100 + ["net1"] * 10, j)
    assert sysctl.read("net.ipv4.neigh.default.gc_thresh1") == 10_100
    assert sysctl.read("net.ipv4.neigh.default.gc_thresh3") == 40_400
    assert sysctl.read("net.ipv6.neigh.default.gc_thresh2") == 20_200
    assert sysctl.read("net.core.netdev_max_backlog") == 64 * 110
    for entry in j.live("sysctl"):
        sysctl.clean_sysctl(entry)
    assert sysctl.read("net.ipv4.neigh.default.gc_thresh3") == 1024
    assert sysctl.read("net.core.netdev_max_backlog") == 1000


def test_neighbour_tables_count_members_on_other_pnodes(proc: Path, tmp_path: Path) -> None:
    _default_neigh_tables(tmp_path)
    j = Journal(tmp_path / "journal")
    # 10 vifaces here on a vnetwork of 200 across pnodes: each may learn 200 neighbours
    sysctl.size_for_platform(["ov"] * 10, j, {"ov": 200})
    assert sysctl.read("net.ipv4.neigh.default.gc_thresh1") == 2000
    assert sysctl.read("net.ipv4.neigh.default.gc_thresh3") == 8000
    for entry in j.live("sysctl"):
        sysctl.clean_sysctl(entry)


def test_small_platform_keeps_the_defaults(proc: Path, tmp_path: Path) -> None:
    _default_neigh_tables(tmp_path)
    j = Journal(tmp_path / "journal")
    sysctl.size_for_platform(["net0"] * 3, j)
    assert [e.id for e in j.live("sysctl")] == []


@pytest.mark.parametrize("first", ["a", "b"])
def test_two_agents_on_one_machine_never_lower_each_other(
    proc: Path, tmp_path: Path, first: str
) -> None:
    key = "net.core.netdev_max_backlog"
    ja, jb = Journal(tmp_path / "a"), Journal(tmp_path / "b")
    sysctl.ensure_at_least(key, 6400, ja)
    sysctl.ensure_at_least(key, 3200, jb)  # high enough, but only thanks to a: claimed
    sysctl.ensure_at_least(key, 12800, jb)
    assert proc.read_text() == "12800"
    journals = {"a": ja, "b": jb}
    other = journals["b" if first == "a" else "a"]
    sysctl.clean_sysctl(journals[first].live("sysctl")[0])
    # what the other one still needs, and not less
    assert proc.read_text() == ("12800" if first == "a" else "6400")
    sysctl.clean_sysctl(other.live("sysctl")[0])
    assert proc.read_text() == "1000", "the last one out restores the original"
    assert not list((tmp_path / "claims").glob("*.json"))
