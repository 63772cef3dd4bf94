"""Pytest fixtures shipped with pydistem: throwaway agents and coordinators that always
clean up what they built, even when the test fails.

Use them from a conftest: ``pytest_plugins = ["pydistem.testing"]``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydistem.agent.service import Agent
from pydistem.coordinator.service import Coordinator
from pydistem.state.store import Store


def unique_tag() -> str:
    """A short random tag, so that kernel names of parallel runs never collide."""
    return "t" + secrets.token_hex(2)


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, veth, LXC)")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    """A pnode agent with its own state dir and tag; cleaned afterwards."""
    needs_root()
    a = Agent(tmp_path / "agent", tag=unique_tag())
    try:
        yield a
    finally:
        report = a.clean()
        a.close()
        assert not report.failed, f"agent cleanup failed: {report.failed}"


@pytest.fixture
def coordinator(agent: Agent, tmp_path: Path) -> Iterator[Coordinator]:
    """A coordinator whose only pnode is ``agent`` (in-process), state in tmp_path."""
    store = Store(tmp_path / "coordinator.sqlite")

    def no_remote(pnode: object) -> object:
        raise AssertionError("this coordinator has only the local pnode")

    c = Coordinator(store, connect=no_remote, local_agent=agent)  # type: ignore[arg-type]
    try:
        yield c
    finally:
        c.quit()
        c.close()
        store.close()
