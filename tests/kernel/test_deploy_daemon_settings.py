"""The platform file's ``daemon:`` section through ``distem deploy``: the coordinator
deploy starts gets its options (here Distem's routes), and a running coordinator that
lacks one is refused before anything is built."""

from __future__ import annotations

import os
import secrets
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.kernel.test_cli_e2e import (
    Distemd,
    distemd,  # noqa: F401 (a fixture)
    free_port,
    leftovers,
    ok,
)

pytestmark = [pytest.mark.kernel]

PLATFORM = """
daemon: {distem_compat: true}
vnetworks:
  - {name: vnet, address: 10.151.0.0/24}
vnodes:
  - name: probe-[1-2]
    runtime: netns
    vifaces: [{name: if0, vnetwork: vnet}]
"""


def test_running_coordinator_without_compat_is_refused(distemd: Distemd, tmp_path: Path):  # noqa: F811
    platform = tmp_path / "p.yaml"
    platform.write_text(PLATFORM)
    res = distemd.distem("deploy", str(platform))
    assert res.returncode != 0
    assert "daemon.distem_compat" in res.stderr and "--distem-compat" in res.stderr
    with distemd.client() as c:
        assert c.vnodes_info() == [] and c.vnetworks_info() == []
    # the Distem routes stay off on this coordinator
    assert httpx.get(f"{distemd.url}/vnodes").status_code == 404


def test_deploy_starts_its_coordinator_with_distem_routes(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    port, tag = free_port(), "s" + secrets.token_hex(2)
    state = tmp_path / "state"
    pid_file = tmp_path / "distemd.pid"
    d = Distemd(
        f"http://127.0.0.1:{port}",
        port,
        tag,
        {
            **os.environ,
            "PYDISTEM_URL": f"http://127.0.0.1:{port}",
            "PYDISTEM_STATE_DIR": str(state),
            "PYDISTEM_TAG": tag,
            "PYDISTEM_TOKEN_FILE": str(state / "token"),
            "PYDISTEM_PID_FILE": str(pid_file),
            "PYDISTEM_LOG_FILE": str(tmp_path / "distemd.log"),
            "COLUMNS": "200",
        },
        tmp_path / "unused.tar.gz",
        tmp_path,
    )
    d.env.pop("PYDISTEM_TOKEN", None)
    platform = tmp_path / "p.yaml"
    platform.write_text(PLATFORM)
    try:
        ok(d.distem("deploy", str(platform)))
        with d.client() as c:
            assert c.daemon_info()["distem_compat"] == ["127.0.0.0/8", "::1/128"]
        # Distem's own route, no token, as Distem's clients call it
        r = httpx.get(f"{d.url}/vnodes", timeout=30)
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"probe-1", "probe-2"}
        assert all(v["status"] == "RUNNING" for v in r.json().values())
        # a second deploy of the same file keeps this coordinator
        again = ok(d.distem("deploy", str(platform)))
        assert "already deployed" in again.stderr
        ok(d.distem("destroy"))
        assert not pid_file.exists()
    finally:
        if pid_file.exists():  # the test failed before destroy: stop what deploy started
            d.distem("destroy")
            if pid_file.exists():
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
                time.sleep(2)
    assert leftovers(tag) == []
