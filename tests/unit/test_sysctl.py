"""Sysctl raising and restoring, on a fake /proc/sys tree (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydistem.agent import sysctl
from pydistem.agent.journal import Journal


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sysctl, "PROC", tmp_path)
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
    assert entry.data == {"original": 1000, "value": 12800}
    sysctl.clean_sysctl(entry)
    assert proc.read_text() == "1000"


def test_a_value_changed_by_someone_else_is_left_alone(proc: Path, tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    sysctl.ensure_at_least("net.core.netdev_max_backlog", 6400, j)
    proc.write_text("20000")  # another agent raised it further
    sysctl.clean_sysctl(j.live("sysctl")[0])
    assert proc.read_text() == "20000"
