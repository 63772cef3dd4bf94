"""A vnetwork's ``gateway``: validated in the model, kept out of automatic addresses,
and planned as the default route of the vnodes whose default viface is on it (as data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pydistem.agent.service import Agent
from pydistem.coordinator import vroutes
from pydistem.coordinator.app import create_app
from pydistem.coordinator.service import Coordinator
from pydistem.errors import ValidationError
from pydistem.model.addressing import pool_of
from pydistem.model.platform_file import platform_from_dict
from pydistem.model.specs import VNetwork, VNode
from pydistem.model.validate import parse
from pydistem.state.store import Store
from pydistem.testing import unique_tag

SITE = VNetwork(name="site", address="10.158.4.0/22", gateway="10.159.255.254")
LAN = VNetwork(name="lan", address="10.20.0.0/24", gateway="10.20.0.254")
PLAIN = VNetwork(name="plain", address="10.30.0.0/24")
NETS = {n.name: n for n in (SITE, LAN, PLAIN)}


def vnode(name: str, *vifs: dict[str, Any], mode: str = "NORMAL") -> VNode:
    return VNode(name=name, runtime="netns", vifaces=list(vifs), mode=mode)


def vif(k: int, vnet: str, address: str, default: bool = False) -> dict[str, Any]:
    return {"name": f"if{k}", "vnetwork": vnet, "address": address, "default": default}


def test_gateway_is_an_ipv4_address_and_onlink_is_derived_from_the_prefix() -> None:
    assert SITE.gateway == "10.159.255.254" and not SITE.gateway_inside
    assert LAN.gateway_inside and PLAIN.gateway is None and not PLAIN.gateway_inside
    assert (
        parse(VNetwork, {"name": "x", "address": "10.1.0.0/24", "gateway": ""}, "v").gateway is None
    )


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"address": "10.1.0.0/24", "gateway": "router"}, "vnetworks[0].gateway", "IPv4 address"),
        ({"address": "10.1.0.0/24", "gateway": "10.1.0.0"}, "vnetworks[0].gateway", "broadcast"),
        ({"address": "10.1.0.0/24", "gateway": "10.1.0.255"}, "vnetworks[0].gateway", "network"),
        ({"address": "10.1.0.0/24", "gateway": "fe80::1"}, "vnetworks[0].gateway", "IPv4"),
        ({"address": "0.0.0.0/0"}, "vnetworks[0].address", "every address"),
    ],
)
def test_bad_gateways_are_refused_naming_the_field(data: dict, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        platform_from_dict({"vnetworks": [{"name": "x", **data}]})
    assert err.value.field == field
    assert words in err.value.reason


def test_the_gateway_inside_the_prefix_is_never_allocated_but_may_be_claimed() -> None:
    small = VNetwork(name="s", address="10.1.0.0/29", gateway="10.1.0.1")
    pool = pool_of(small)
    assert [pool.allocate("a") for _ in range(5)] == [f"10.1.0.{i}" for i in range(2, 7)]
    with pytest.raises(ValidationError, match="no free address"):
        pool.allocate("a")
    assert pool_of(small).claim("a", "10.1.0.1") == "10.1.0.1"  # a router vnode may take it
    assert pool_of(SITE).allocate("a") == "10.158.4.1"  # outside: nothing to avoid


def test_default_route_through_the_gateway_of_the_default_vifaces_vnetwork() -> None:
    a = vnode("a", vif(0, "site", "10.158.4.1"))
    assert vroutes.routes_for(a, NETS, []) == {
        "routes": [
            {
                "destination": "0.0.0.0/0",
                "gateway": "10.159.255.254",
                "device": "if0",
                "onlink": True,
            }
        ],
        "forward": False,
    }
    # the first attached viface is the default unless one is flagged
    b = vnode("b", vif(0, "plain", "10.30.0.1"), vif(1, "lan", "10.20.0.1"))
    assert vroutes.routes_for(b, NETS, [])["routes"] == []
    c = vnode("c", vif(0, "plain", "10.30.0.2"), vif(1, "lan", "10.20.0.2", default=True))
    assert vroutes.routes_for(c, NETS, [])["routes"] == [
        {"destination": "0.0.0.0/0", "gateway": "10.20.0.254", "device": "if1", "onlink": False}
    ]


def test_the_gateway_vnode_itself_gets_no_default_route_through_itself() -> None:
    router = vnode("r", vif(0, "lan", "10.20.0.254"), mode="GATEWAY")
    assert vroutes.routes_for(router, NETS, []) == {"routes": [], "forward": True}


def test_vroutes_and_the_default_route_go_together() -> None:
    a = vnode("a", vif(0, "lan", "10.20.0.1"))
    gw = vnode("g", vif(0, "lan", "10.20.0.2"), vif(1, "plain", "10.30.0.2"))
    routes = vroutes.complete(NETS, [a, gw], {})
    plan = vroutes.routes_for(a, NETS, routes)
    assert plan["routes"] == [
        {"destination": "0.0.0.0/0", "gateway": "10.20.0.254", "device": "if0", "onlink": False},
        {"destination": "10.30.0.0/24", "gateway": "10.20.0.2"},
    ]
    # the vroute gateway forwards, and its own default viface (lan) gives it the default route
    assert vroutes.routes_for(gw, NETS, routes) == {
        "routes": [
            {"destination": "0.0.0.0/0", "gateway": "10.20.0.254", "device": "if0", "onlink": False}
        ],
        "forward": True,
    }


def test_rest_takes_the_gateway_and_automatic_addresses_skip_it(tmp_path: Path) -> None:
    agent = Agent(tmp_path / "agent", tag=unique_tag())
    c = Coordinator(Store(tmp_path / "c.sqlite"), connect=None, local_agent=agent)  # type: ignore[arg-type]
    try:
        api = TestClient(create_app(c, None))
        r = api.post(
            "/api/v1/vnetworks", json={"name": "n", "address": "10.9.0.0/29", "gateway": "x"}
        )
        assert r.status_code == 400 and r.json()["field"] == "gateway", r.json()
        body = {"name": "n", "address": "10.9.0.0/29", "gateway": "10.9.0.1"}
        assert api.post("/api/v1/vnetworks", json=body).json()["gateway"] == "10.9.0.1"
        assert api.get("/api/v1/vnetworks/n").json()["gateway"] == "10.9.0.1"
        c.vnodes_create(
            [{"name": "a", "runtime": "netns", "vifaces": [{"name": "if0", "vnetwork": "n"}]}]
        )
        assert c.vnodes["a"].vifaces[0].address == "10.9.0.2"
    finally:
        c.close()
        agent.close()
