"""The Ruby Listing 1 ported to the Python client (examples/listing1.py) runs for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_e2e import Distemd, distemd, leftovers  # noqa: F401  (distemd is a fixture)

pytestmark = [pytest.mark.kernel, pytest.mark.lxc]

LISTING = Path(__file__).resolve().parents[2] / "examples" / "listing1.py"


def test_listing1_port(distemd: Distemd):  # noqa: F811  (the imported fixture)
    res = subprocess.run(
        [sys.executable, str(LISTING), f"file://{distemd.image}", "localhost"],
        env=distemd.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["node-1", "node-2", "node-3"]
    with distemd.client() as cl:
        vnodes = cl.vnodes_info()
        assert {v["status"] for v in vnodes} == {"RUNNING"}
        assert all(v["vifaces"][0]["address"].startswith("10.144.") for v in vnodes)
        cl.quit()
        assert cl.vnodes_info() == []
    assert leftovers(distemd.tag) == []


def test_client_errors_are_typed(distemd: Distemd):  # noqa: F811
    from pydistem.client import PartialFailure
    from pydistem.errors import NotFound, ValidationError

    with distemd.client() as cl:
        cl.pnode_init("localhost")
        with pytest.raises(ValidationError) as info:
            cl.vnetwork_create("vnet", "10.144.0.0/33")
        assert info.value.field == "address"
        with pytest.raises(NotFound):
            cl.vnode_info("nope")
        cl.vnetwork_create("vnet", "10.144.0.0/24")
        cl.vnodes_create(
            ["a"], {"runtime": "netns", "vifaces": [{"name": "if0", "vnetwork": "vnet"}]}
        )
        assert cl.vnodes_start(["a"])[0]["status"] == "RUNNING"
        with pytest.raises((PartialFailure, NotFound)):
            cl.vnodes_start(["a", "ghost"])
        assert cl.vnode_execute("a", ["sh", "-c", "echo hi; exit 4"]).exit_code == 4
