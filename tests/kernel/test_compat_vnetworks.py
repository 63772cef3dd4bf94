"""Distem's vnetwork types and vroute routes through ``--distem-compat``, on the real
kernel: ``opts`` ``classical``/``vxlan`` with ``root_interface``, ``POST
/vnetworks/:vnet/routes`` and ``POST /vnetworks/routes/complete`` with the bodies of
WIRE_CAPTURE.md, answered in Distem's shapes; the routes work (``netns`` vnodes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from pydistem.coordinator.app import create_app
from pydistem.coordinator.compat.encoding import ERROR_HEADER
from pydistem.coordinator.service import Coordinator

pytestmark = pytest.mark.kernel

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form(**fields: object) -> str:
    parts = []
    for key, value in fields.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={quote(text, safe='')}")
    return "&".join(parts)


@pytest.fixture
def distem(kernel_unchanged, coordinator: Coordinator) -> Iterator[TestClient]:
    app = create_app(coordinator, "tok", distem_compat=True)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield client


def ok(r):  # type: ignore[no-untyped-def]
    assert r.status_code == 200, (r.status_code, r.headers.get(ERROR_HEADER), r.text)
    return r.json()


def test_vnetwork_types_and_vroutes(distem: TestClient, coordinator: Coordinator) -> None:
    c = coordinator
    body = form(name="vnet1", address="10.171.0.0/24", opts={"network_type": "vxlan"})
    vx = ok(distem.post("/vnetworks", content=body, headers=FORM))
    assert vx["opts"]["network_type"] == "vxlan" and isinstance(vx["opts"]["vxlan_id"], int)
    ok(distem.post("/vnetworks", content=form(name="vnet2", address="10.172.0.0/24"), headers=FORM))
    r = distem.post(
        "/vnetworks",
        content=form(name="v3", address="10.173.0.0/24", opts={"network_type": "ethernet"}),
        headers=FORM,
    )
    assert r.status_code == 400 and "InvalidParameterError" in r.headers[ERROR_HEADER]
    c.vnodes_create(
        [
            {"name": "a", "runtime": "netns", "vifaces": [{"name": "if0", "vnetwork": "vnet1"}]},
            {
                "name": "gw",
                "runtime": "netns",
                "vifaces": [
                    {"name": "if0", "vnetwork": "vnet1"},
                    {"name": "if1", "vnetwork": "vnet2"},
                ],
            },
            {"name": "b", "runtime": "netns", "vifaces": [{"name": "if0", "vnetwork": "vnet2"}]},
        ]
    )
    assert set(c.vnodes_start().values()) == {None}
    # WIRE_CAPTURE: vroute_create -> POST /vnetworks/vnet1/routes destnetwork=vnet2&gatewaynode=gw
    route = ok(
        distem.post(
            "/vnetworks/vnet1/routes",
            content=form(destnetwork="vnet2", gatewaynode="gw"),
            headers=FORM,
        )
    )
    assert route == {"id": "0", "networksrc": "vnet1", "networkdst": "vnet2",
                     "gateway": c.vnodes["gw"].vifaces[0].address}  # fmt: skip
    # a gateway not attached to the source vnetwork: 400, as Distem
    r = distem.post(
        "/vnetworks/vnet1/routes", content=form(destnetwork="vnet2", gatewaynode="b"), headers=FORM
    )
    assert r.status_code == 400 and "not attached" in r.headers[ERROR_HEADER]
    r = distem.post(
        "/vnetworks/nope/routes", content=form(destnetwork="vnet2", gatewaynode="gw"), headers=FORM
    )
    assert r.status_code == 404
    # vroute_complete answers the vnetworks hash, now with both directions
    nets = ok(distem.post("/vnetworks/routes/complete", content="", headers=FORM))
    assert set(nets) == {"vnet1", "vnet2"}
    assert nets["vnet1"]["vroutes"]["10.172.0.0/24"]["networkdst"] == "vnet2"
    back = nets["vnet2"]["vroutes"]["10.171.0.0/24"]
    assert back["gateway"] == c.vnodes["gw"].vifaces[1].address
    b = c.vnodes["b"].vifaces[0].address
    assert c.vnode_execute("a", f"ping -c 1 -W 2 {b}").exit_code == 0
    assert ok(distem.get("/vnetworks/vnet2"))["vroutes"] == nets["vnet2"]["vroutes"]
