"""A third-party adapter package (docs/examples/example-adapter) installed into this
virtualenv is found through its entry point and drives a whole ``distem deploy``:
reserve (booked on its sheet, saved under the state dir) -> this machine as the pnode ->
netns vnodes -> a command in each -> release (booking gone, file removed)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydistem.client import Client
from tests.testbeds.conftest import free_port

pytestmark = [pytest.mark.testbeds, pytest.mark.kernel]

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "docs" / "examples" / "example-adapter"
BIN = Path(sys.executable).parent


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def example_adapter(tmp_path: Path) -> Iterator[None]:
    """pip-install the example package (from a copy: the build writes into its tree)."""
    src = tmp_path / "example-adapter"
    shutil.copytree(PACKAGE, src)
    _pip("uninstall", "-y", "pydistem-example-adapter")
    _pip("install", "--no-build-isolation", "--no-deps", str(src))
    try:
        yield
    finally:
        _pip("uninstall", "-y", "pydistem-example-adapter")


@pytest.fixture
def distemd(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A ``distemd -d`` of our own (free port, unique tag); its env for ``distem``."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    port, state = free_port(), tmp_path / "state"
    env = {
        **os.environ,
        "PYDISTEM_URL": f"http://127.0.0.1:{port}",
        "PYDISTEM_TOKEN_FILE": str(state / "token"),
        "PYDISTEM_STATE_DIR": str(tmp_path / "cli-state"),
        "PYDISTEM_PID_FILE": str(tmp_path / "distemd.pid"),
        "PYDISTEM_LOG_FILE": str(tmp_path / "started.log"),
        "COLUMNS": "200",
    }
    env.pop("PYDISTEM_TOKEN", None)
    tag = "x" + secrets.token_hex(2)
    cmd = [str(BIN / "distemd"), "-d", "--port", str(port), "--state-dir", str(state), "--tag", tag]
    with (tmp_path / "distemd.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not Client(env["PYDISTEM_URL"]).health():
            assert proc.poll() is None and time.monotonic() < deadline, "distemd did not start"
            time.sleep(0.1)
        yield env
    finally:
        if proc.poll() is None:
            token = (state / "token").read_text().strip()
            with Client(env["PYDISTEM_URL"], token=token) as c:
                c.quit()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_third_party_adapter_is_discovered_and_used(
    kernel_unchanged: object, example_adapter: None, distemd: dict[str, str], tmp_path: Path
) -> None:
    distem = str(BIN / "distem")
    listed = subprocess.run(
        [distem, "--json", "testbeds"], env=distemd, capture_output=True, text=True, check=True
    )
    by_name = {a["name"]: a for a in json.loads(listed.stdout)}
    assert by_name["example"]["entry_point"] == "pydistem_example_adapter:BookingAdapter"
    assert by_name["example"]["capabilities"] == ["bare_metal", "layer2"]
    assert by_name["example"]["error"] is None

    sheet = tmp_path / "bookings.json"
    platform = tmp_path / "p.yaml"
    platform.write_text(
        f"testbed: {{adapter: example, sheet: {sheet}, holder: tester}}\n"
        "vnetworks: [{name: vnet, address: 10.152.0.0/24}]\n"
        "vnodes:\n"
        "  - {name: 'v-[1-2]', runtime: netns, vifaces: [{name: if0, vnetwork: vnet}]}\n"
    )
    bad = subprocess.run(
        [distem, "deploy", str(platform).replace("p.yaml", "bad.yaml")],
        env=distemd, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2
    (tmp_path / "bad.yaml").write_text("testbed: {adapter: example, sheet: /x, colour: red}\n")
    bad = subprocess.run(
        [distem, "deploy", str(tmp_path / "bad.yaml")], env=distemd, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "testbed.colour: unknown key" in bad.stderr, bad.stderr

    res = subprocess.run(
        [distem, "deploy", str(platform), "--run", "echo hi from $(hostname)"],
        env=distemd, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "booking this machine" in res.stderr and "reserved example-" in res.stderr
    assert "hi from v-1" in res.stdout and "hi from v-2" in res.stdout
    assert re.search(r"released\s*│\s*True", res.stderr), res.stderr
    assert json.loads(sheet.read_text()) == {"bookings": {}}
    assert not list((tmp_path / "cli-state" / "reservations").glob("*.json"))
