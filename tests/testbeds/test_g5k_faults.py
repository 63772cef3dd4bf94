"""The g5k adapter through real execo against the loopback stand-ins: every failure
ends with a clear message and no OAR job left (or a retry that succeeds), the saved
reservation outlives a crash and ``distem release`` ends it, credentials never show."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.testbeds.conftest import TOKEN, G5kStandins

pytestmark = pytest.mark.testbeds


def _all_output(g5k: G5kStandins, *texts: str) -> str:
    files = [
        p.read_text()
        for p in g5k.root.rglob("*")
        if p.is_file() and p.suffix in (".json", ".log", ".jsonl")
    ]
    return "\n".join([*texts, *files])  # fmt: skip


def test_refused_job_says_why_and_holds_nothing(g5k_loopback: G5kStandins) -> None:
    g5k_loopback.frontend.set_fault("refuse")
    r = g5k_loopback.distem("deploy", str(g5k_loopback.platform(walltime="0:10:00")))
    assert r.returncode == 1, r.stderr
    assert "oarsub on rennes failed" in r.stderr and "admission rule 42" in r.stderr, r.stderr
    assert g5k_loopback.frontend.jobs() == {}
    assert g5k_loopback.saved() == []


def test_job_waiting_past_the_timeout_is_deleted(g5k_loopback: G5kStandins) -> None:
    g5k_loopback.frontend.set_fault("never_start")
    r = g5k_loopback.distem("deploy", str(g5k_loopback.platform(wait_timeout=2)))
    assert r.returncode == 1
    assert "did not start within 2s (state Waiting); it was deleted" in r.stderr, r.stderr
    jobs = g5k_loopback.frontend.jobs()
    assert [j["state"] for j in jobs.values()] == ["Error"]  # oardel'ed
    assert g5k_loopback.saved() == []


def test_deployment_failing_on_one_node_deletes_the_job(g5k_loopback: G5kStandins) -> None:
    g5k_loopback.frontend.set_fault("deploy_fail", "paravance-2.rennes.grid5000.fr")
    r = g5k_loopback.distem(
        "deploy", str(g5k_loopback.platform(cluster="paravance", environment="debian12-min"))
    )
    assert r.returncode == 1
    assert (
        "kadeploy3 debian12-min failed on paravance-2.rennes.grid5000.fr "
        "(Deploy[SetDeploymentEnvUntrusted] reboot: the node did not come back)"
    ) in r.stderr, r.stderr
    assert g5k_loopback.frontend.live_jobs() == []
    assert g5k_loopback.saved() == []
    # the API was used with the login from ~/.python-grid5000.yaml, which never shows
    requests = g5k_loopback.world.requests
    assert requests and all(q["auth"] and q["status"] == 200 for q in requests)
    assert TOKEN not in _all_output(g5k_loopback, r.stdout, r.stderr)


def test_api_5xx_then_recovery_is_retried(g5k_loopback: G5kStandins) -> None:
    g5k_loopback.world.fail["/sites"] = 2
    g5k_loopback.frontend.set_fault("refuse")  # stop right after the API checks
    r = g5k_loopback.distem("deploy", str(g5k_loopback.platform(cluster="paravance")))
    assert "API answered HTTP 503; retrying" in r.stderr, r.stderr
    assert "oarsub on rennes failed" in r.stderr  # got past the API
    statuses = [q["status"] for q in g5k_loopback.world.requests if q["path"] == "/sites"]
    assert statuses[:3] == [503, 503, 200]


def test_api_5xx_for_good_fails_before_reserving(g5k_loopback: G5kStandins) -> None:
    g5k_loopback.world.fail["/sites"] = 100
    r = g5k_loopback.distem("deploy", str(g5k_loopback.platform(api_retries=2)))
    assert r.returncode == 1
    assert "failed to give the list of sites: HTTP 503 (after 2 tries)" in r.stderr, r.stderr
    assert g5k_loopback.frontend.jobs() == {}


def test_unknown_cluster_is_a_field_error(g5k_loopback: G5kStandins) -> None:
    r = g5k_loopback.distem("deploy", str(g5k_loopback.platform(cluster="nope")))
    assert r.returncode == 2
    assert "testbed.cluster: 'nope' is not a cluster of rennes" in r.stderr, r.stderr
    assert g5k_loopback.frontend.jobs() == {}


def test_reservation_survives_a_crash_and_distem_release_ends_it(
    g5k_loopback: G5kStandins,
) -> None:
    g5k_loopback.frontend.set_fault("never_start")
    proc = g5k_loopback.popen("deploy", str(g5k_loopback.platform()))
    try:
        deadline = time.monotonic() + 60
        while not g5k_loopback.saved() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)  # a crash: nothing gets to clean up
    finally:
        proc.wait(10)
        proc.communicate()
    [saved] = g5k_loopback.saved()
    doc = json.loads(saved.read_text())
    assert doc["testbed"] == "g5k" and doc["data"]["site"] == "rennes"
    assert g5k_loopback.frontend.live_jobs() == [doc["id"]]
    listed = g5k_loopback.distem("--json", "reservations")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["key"], row["state"], row["message"]) == (f"g5k-{doc['id']}", "pending", "Waiting")
    r = g5k_loopback.distem("release")
    assert r.returncode == 0, r.stderr
    assert f"released g5k-{doc['id']}" in r.stderr
    assert g5k_loopback.frontend.live_jobs() == []
    assert g5k_loopback.saved() == []
    again = g5k_loopback.distem("release")
    assert again.returncode == 0 and "no saved reservation" in again.stderr


EXTEND = """
import sys
from pydistem.adapters import registry
from pydistem.errors import ReservationError
a = registry.create({"adapter": "g5k", "site": "rennes", "nodes": 1, "gateway": "none",
                     "walltime": "0:10:00"})
r = a.reserve()
try:
    a.extend(r, 600)
    print("extended")
except ReservationError as exc:
    print("refused:", exc)
finally:
    a.release(r)
"""


@pytest.mark.parametrize("refuse", [False, True], ids=["accepted", "refused"])
def test_extend_through_oarwalltime(g5k_loopback: G5kStandins, refuse: bool) -> None:
    if refuse:
        g5k_loopback.frontend.set_fault("extend_refuse")
    r = subprocess.run(
        [sys.executable, "-c", EXTEND], env=g5k_loopback.env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    [job] = g5k_loopback.frontend.jobs().values()
    assert job["state"] == "Error"  # released either way
    if refuse:
        assert "refused: g5k: oarwalltime 1894417 +0:10:0 on rennes" in r.stdout, r.stdout
        assert job["walltime"] == 600
    else:
        assert r.stdout.strip() == "extended" and job["walltime"] == 1200
