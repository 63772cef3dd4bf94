"""``distem clean`` with no coordinator left: it cleans from the agent's journal."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pydistem.agent.service import Agent
from pydistem.model.specs import VNetwork, VNode
from pydistem.testing import unique_tag

pytestmark = pytest.mark.kernel


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_distem_clean_without_coordinator(tmp_path: Path, kernel_unchanged) -> None:
    agent = Agent(tmp_path / "agent", tag=unique_tag())
    try:
        agent.vnetwork_create(VNetwork(name="net0", address="10.160.0.0/24"))
        vnodes = [
            VNode(
                name=f"n{i}",
                runtime="netns",
                vifaces=[{"name": "if0", "vnetwork": "net0", "address": f"10.160.0.{i}"}],
            )
            for i in (1, 2)
        ]
        assert agent.vnodes_start(vnodes) == {"n1": None, "n2": None}
        agent.vnode_execute("n1", "(sleep 600 >/dev/null 2>&1 &); true")
    finally:
        agent.journal.close()  # the daemon dies here, nothing removed
    env = {
        **os.environ,
        "PYDISTEM_STATE_DIR": str(tmp_path),
        "PYDISTEM_URL": f"http://127.0.0.1:{free_port()}",
    }

    def distem_clean() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pydistem.cli.main", "clean"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    r = distem_clean()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "removed 9 kernel objects" in r.stdout + r.stderr
    r = distem_clean()  # a second clean finds nothing left and still succeeds
    assert r.returncode == 0, r.stdout + r.stderr
