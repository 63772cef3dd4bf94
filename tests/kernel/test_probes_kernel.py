"""Pnode probes on the real /proc: a bw probe on the loopback interface measures the bytes
a TCP transfer over 127.0.0.1 sends (every byte counted, received and sent alike on
``lo``), cpu and memory probes give plausible values; stop, restart, delete. Then
Distem's ``/pnodes/probes`` routes over HTTP."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_compat_wire import FORM, form, ok, stack  # noqa: F401 - fixtures

from pydistem.coordinator import probes
from pydistem.coordinator.compat.encoding import ERROR_HEADER
from pydistem.coordinator.service import Coordinator
from pydistem.errors import NotFound, ValidationError

pytestmark = [pytest.mark.kernel]
SENT = 40 * 2**20


def transfer(nbytes: int) -> None:
    """Send ``nbytes`` over a TCP connection on 127.0.0.1 (received and discarded)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def sink() -> None:
        conn, _ = srv.accept()
        with conn:
            while conn.recv(1 << 16):
                pass

    t = threading.Thread(target=sink)
    t.start()
    with socket.create_connection(srv.getsockname()) as s:
        chunk = b"x" * (1 << 16)
        for _ in range(nbytes // len(chunk)):
            s.sendall(chunk)
            time.sleep(0.0005)  # spread it over several samples
    t.join()
    srv.close()


def test_probes_on_the_real_proc(coordinator: Coordinator) -> None:
    c = coordinator
    c.pnode_init(["localhost"])
    (pid,) = c.pnodes
    with pytest.raises(ValidationError, match="pd-no-such"):
        probes.launch(c, [{"type": "bw", "interface": "pd-no-such"}])
    with pytest.raises(NotFound):
        probes.set_state(c, "restart")
    started = probes.launch(
        c,
        [
            {"type": "bw", "interface": "lo", "frequency": 10},
            {"type": "cpu", "frequency": 5},
            {"type": "memory", "frequency": 5},
        ],
    )
    assert [p.name for p in started] == ["bw", "cpu", "memory"]
    time.sleep(0.3)
    transfer(SENT)
    time.sleep(0.5)
    probes.set_state(c, "stop")
    data = probes.data(c)[pid]
    bw = data["bw"]
    assert len(bw) >= 5
    times = [t for t, _ in bw]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 5
    assert all(rx == tx for _, (rx, tx) in bw), "lo receives every byte it sends"
    periods = [b - a for a, b in itertools.pairwise(times)]
    counted = sum(rx * dt for (_, (rx, _tx)), dt in zip(bw[1:], periods, strict=True))
    assert counted >= 0.9 * SENT, f"{counted} bytes seen of {SENT} sent"
    assert all(0 <= v[0] <= 100 for _, v in data["cpu"]) and len(data["cpu"]) >= 3
    total_mib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024
    used, available = data["memory"][-1][1]
    assert abs(used + available - total_mib) < 2

    # stopped: no more samples; restarted: more; deleted: nothing
    time.sleep(0.4)
    assert len(probes.data(c)[pid]["memory"]) == len(data["memory"])
    probes.set_state(c, "restart")
    time.sleep(0.5)
    assert len(probes.data(c)[pid]["memory"]) > len(data["memory"])
    probes.delete(c)
    assert probes.data(c) == {pid: {}}


def test_distem_probe_routes(stack: tuple[Coordinator, TestClient]) -> None:  # noqa: F811
    c, client = stack
    post = lambda path, **f: client.post(path, content=form(**f), headers=FORM)  # noqa: E731
    ok(post("/pnodes", target=["localhost"]))
    hostname = next(iter(c.pnodes.values())).hostname
    r = post("/pnodes/probes", desc={"ProbeLoadAvg": {"frequency": 20, "name": "load"}})
    assert (r.status_code, r.content) == (200, b"")
    time.sleep(0.5)
    data = ok(client.get("/pnodes/probes"))
    assert list(data) == [hostname] and list(data[hostname]) == ["load"]
    assert len(data[hostname]["load"]) >= 5
    assert all(len(v) == 3 for _, v in data[hostname]["load"])
    r = client.put("/pnodes/probes", content=form(state="stop"), headers=FORM)
    assert (r.status_code, r.content) == (200, b"")
    n = len(ok(client.get("/pnodes/probes"))[hostname]["load"])
    time.sleep(0.2)
    assert len(ok(client.get("/pnodes/probes"))[hostname]["load"]) == n
    r = client.put("/pnodes/probes", content=form(state="restart"), headers=FORM)
    assert r.status_code == 200
    time.sleep(0.3)
    assert len(ok(client.get("/pnodes/probes"))[hostname]["load"]) > n
    r = client.delete("/pnodes/probes")
    assert (r.status_code, r.content) == (200, b"")
    assert ok(client.get("/pnodes/probes")) == {hostname: {}}
    bad = post("/pnodes/probes", desc={"ProbeDisk": {"frequency": 1}})
    assert bad.status_code == 400 and "ProbeDisk" in bad.headers[ERROR_HEADER]
    bad = client.put("/pnodes/probes", content=form(state="restart"), headers=FORM)
    assert bad.status_code == 404
