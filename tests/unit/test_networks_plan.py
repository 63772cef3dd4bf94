"""Planning across pnodes as data: placement constraints, vroutes, VNIs, probe frames,
the platform file's ``vroutes``."""

from __future__ import annotations

import pydantic
import pytest

from pydistem.agent import l2probe
from pydistem.coordinator import networks, placement, vroutes
from pydistem.errors import ValidationError
from pydistem.model.platform_file import platform_from_dict
from pydistem.model.specs import PNode, VNetwork, VNode, VRoute


def pnodes(*ids: str, cores: int = 2) -> dict[str, PNode]:
    return {i: PNode(id=i, address=i, status="RUNNING", cores=cores) for i in ids}


def vnode(name: str, *nets: str, host: str | None = None, addr: dict | None = None) -> VNode:
    vifs = [
        {"name": f"if{k}", "vnetwork": n, "address": (addr or {}).get(n)}
        for k, n in enumerate(nets)
    ]
    return VNode(name=name, runtime="netns", host=host, vifaces=vifs)


NETS = {
    "local": VNetwork(name="local", address="10.1.0.0/24", network_type="bridge"),
    "lan": VNetwork(
        name="lan", address="10.2.0.0/24", network_type="bridge", root_interface="eth1"
    ),
    "ov": VNetwork(name="ov", address="10.3.0.0/24", network_type="vxlan", vni=100),
}
FIELD = lambda i: f"vnodes[{i}]"  # noqa: E731


def test_auto_placement_spreads_by_cores_over_vxlan() -> None:
    planned = [vnode(f"n{i}", "ov") for i in range(8)]
    placement.place(planned, [], pnodes("a", "b", "c", "d"), NETS, {}, FIELD)
    hosts = [v.host for v in planned]
    assert sorted(hosts.count(h) for h in "abcd") == [2, 2, 2, 2]


def test_local_bridge_pins_its_vnodes_to_one_pnode() -> None:
    planned = [vnode("x", "local", host="c"), vnode("y", "local"), vnode("z", "ov")]
    placement.place(planned, [], pnodes("a", "b", "c"), NETS, {}, FIELD)
    assert planned[1].host == "c"
    with pytest.raises(ValidationError) as err:
        placement.place(
            [vnode("w", "local", host="a")], planned, pnodes("a", "b", "c"), NETS, {}, FIELD
        )
    assert err.value.field == "vnodes[0].host"
    assert "local bridge on pnode c" in err.value.reason


def test_classic_vnetwork_avoids_and_refuses_faulty_uplinks() -> None:
    faults = {"eth1": {"b": networks.classic_fault(
        PNode(id="b", address="b", features={"l2:eth1": False}), "eth1")}}  # fmt: skip
    planned = [vnode(f"n{i}", "lan") for i in range(6)]
    placement.place(planned, [], pnodes("a", "b", "c"), NETS, faults, FIELD)
    assert "b" not in {v.host for v in planned}
    with pytest.raises(ValidationError) as err:
        placement.place([vnode("m", "lan", host="b")], [], pnodes("a", "b"), NETS, faults, FIELD)
    assert err.value.field == "vnodes[0].host"
    assert "drops frames for MAC addresses that are not its own" in err.value.reason
    # the same vnode on a vxlan vnetwork may go there
    placement.place([vnode("m", "ov", host="b")], [], pnodes("a", "b"), NETS, faults, FIELD)


def test_no_pnode_left_names_the_reasons() -> None:
    fault = {"eth1": {"a": "pnode a: bad uplink"}}
    with pytest.raises(ValidationError) as err:
        placement.place([vnode("m", "lan")], [], pnodes("a"), NETS, fault, FIELD)
    assert err.value.reason == "no pnode can run vnode m: pnode a: bad uplink"


def test_vni_allocation_skips_taken_ones() -> None:
    taken = [VNetwork(name=f"v{i}", address=f"10.{i}.0.0/24", vni=100 + i) for i in (0, 1, 3)]
    assert networks.allocate_vni(taken) == 102
    assert networks.allocate_vni([]) == networks.VNI_FIRST


# ---------------------------------------------------------------------------- vroutes

CHAIN = {
    n: VNetwork(name=n, address=f"10.{k}.0.0/24", network_type="bridge")
    for k, n in enumerate(["n1", "n2", "n3"], start=10)
}
CHAIN_NODES = [
    vnode("a", "n1", addr={"n1": "10.10.0.1"}),
    vnode("g1", "n1", "n2", addr={"n1": "10.10.0.2", "n2": "10.11.0.2"}),
    vnode("g2", "n2", "n3", addr={"n2": "10.11.0.3", "n3": "10.12.0.3"}),
    vnode("b", "n3", addr={"n3": "10.12.0.4"}),
]


def test_complete_routes_a_chain_through_first_hops() -> None:
    routes = {
        (r.source, r.destination): r.gateway for r in vroutes.complete(CHAIN, CHAIN_NODES, {})
    }
    assert routes == {
        ("n1", "n2"): "10.10.0.2",
        ("n1", "n3"): "10.10.0.2",
        ("n2", "n1"): "10.11.0.2",
        ("n2", "n3"): "10.11.0.3",
        ("n3", "n2"): "10.12.0.3",
        ("n3", "n1"): "10.12.0.3",
    }
    existing = {vroutes.key("n1", "n3"): VRoute(source="n1", destination="n3", gateway="10.10.0.2")}
    assert ("n1", "n3") not in {
        (r.source, r.destination) for r in vroutes.complete(CHAIN, CHAIN_NODES, existing)
    }


def test_routes_for_each_vnode_and_forwarding_in_gateways() -> None:
    all_routes = vroutes.complete(CHAIN, CHAIN_NODES, {})
    plan = {v.name: vroutes.routes_for(v, CHAIN, all_routes) for v in CHAIN_NODES}
    assert plan["a"] == {
        "routes": [
            {"destination": "10.11.0.0/24", "gateway": "10.10.0.2"},
            {"destination": "10.12.0.0/24", "gateway": "10.10.0.2"},
        ],
        "forward": False,
    }
    # g1 is on n1 and n2: it only needs n3, through g2
    assert plan["g1"] == {
        "routes": [{"destination": "10.12.0.0/24", "gateway": "10.11.0.3"}],
        "forward": True,
    }
    assert plan["g2"]["forward"] and plan["b"]["forward"] is False


def test_mode_gateway_forwards_without_any_vroute() -> None:
    a = next(v for v in CHAIN_NODES if v.name == "a")
    gw = a.model_copy(update={"mode": "GATEWAY"})
    assert vroutes.routes_for(gw, CHAIN, []) == {"routes": [], "forward": True}
    assert vroutes.routes_for(a, CHAIN, []) == {"routes": [], "forward": False}
    assert VNode(name="x", mode="gateway").mode == "GATEWAY"  # any case
    with pytest.raises(pydantic.ValidationError):
        VNode(name="x", mode="ROUTER")


def test_gateway_by_name_or_address_must_be_on_the_source() -> None:
    assert vroutes.resolve_gateway(CHAIN_NODES, CHAIN["n2"], "g1") == "10.11.0.2"
    assert vroutes.resolve_gateway(CHAIN_NODES, CHAIN["n2"], "10.10.0.2/24") == "10.11.0.2"
    with pytest.raises(ValidationError, match="not attached to vnetwork n2"):
        vroutes.resolve_gateway(CHAIN_NODES, CHAIN["n2"], "a")
    with pytest.raises(ValidationError, match=r"no vnode has the address 10\.9\.9\.9"):
        vroutes.resolve_gateway(CHAIN_NODES, CHAIN["n2"], "10.9.9.9")
    with pytest.raises(ValidationError, match="neither a vnode nor an address"):
        vroutes.resolve_gateway(CHAIN_NODES, CHAIN["n2"], "nobody")


def test_platform_file_vroutes() -> None:
    assert platform_from_dict({"vroutes": "complete"}).vroutes == "complete"
    doc = {"vroutes": [{"source": "a", "destination": "b", "gateway": "g"}]}
    assert platform_from_dict(doc).vroutes == doc["vroutes"]
    with pytest.raises(ValidationError) as err:
        platform_from_dict({"vroutes": [{"source": "a", "destination": "b"}]})
    assert err.value.field == "vroutes[0].gateway"
    with pytest.raises(ValidationError) as err:
        platform_from_dict({"vroutes": [{"source": "a", "destination": "b", "gw": "g"}]})
    assert err.value.field == "vroutes[0].gw"
    with pytest.raises(ValidationError):
        platform_from_dict({"vroutes": "all"})


def test_vroutes_checked_against_the_planned_platform() -> None:
    with pytest.raises(ValidationError) as err:
        vroutes.check([{"source": "n1", "destination": "n9", "gateway": "g1"}], CHAIN, CHAIN_NODES)
    assert err.value.field == "vroutes[0].destination"
    with pytest.raises(ValidationError) as err:
        vroutes.check([{"source": "n1", "destination": "n3", "gateway": "b"}], CHAIN, CHAIN_NODES)
    assert err.value.field == "vroutes[0].gateway"


# ---------------------------------------------------------------------------- model, probe


def test_vnetwork_fields() -> None:
    assert VNetwork(name="v", address="10.0.0.0/24").network_type == "auto"
    assert NETS["ov"].viface_mtu() == 1450 and NETS["lan"].viface_mtu() is None
    assert (
        VNetwork(name="v", address="10.0.0.0/24", network_type="vxlan", mtu=8950).viface_mtu()
        == 8950
    )
    assert not NETS["local"].spans_pnodes and NETS["lan"].spans_pnodes and NETS["ov"].spans_pnodes
    with pytest.raises(ValueError):
        VNetwork(name="v", address="10.0.0.0/24", vni=1 << 24)
    with pytest.raises(ValueError):
        VNetwork(name="v", address="10.0.0.0/24", root_interface="eth;1")


def test_probe_frames_round_trip_and_use_foreign_macs() -> None:
    frame = l2probe.frame("n0nce", "10.0.0.3")
    assert len(frame) >= 60 and frame[:6] == l2probe.DEST_MAC
    assert frame[6] & 0x02 and not frame[6] & 0x01, "locally administered unicast source"
    assert frame[12:14] == b"\x88\xb5"
    assert l2probe.parse(frame, "n0nce") == "10.0.0.3"
    assert l2probe.parse(frame, "other") is None, "another round's frame is ignored"
    assert l2probe.parse(frame[:14] + b"junk" * 12, "n0nce") is None


def test_distem_network_types_map_to_ours() -> None:
    from pydistem.coordinator.compat import shapes

    def kind(opts: dict) -> tuple:
        d = shapes.vnetwork_desc("n", "10.0.0.0/24", opts)
        return d["network_type"], d.get("root_interface")

    assert kind({}) == ("auto", None)  # classical, no interface: never the default one
    assert kind({"network_type": "classical", "root_interface": "eth1"}) == ("bridge", "eth1")
    assert kind({"network_type": "VXLAN"}) == ("vxlan", None)
    shape = shapes.vnetwork(
        NETS["ov"], {}, [VRoute(source="ov", destination="lan", gateway="10.3.0.9")], NETS
    )
    assert shape["opts"] == {"network_type": "vxlan", "vxlan_id": 100}
    assert shape["vroutes"] == {
        "10.2.0.0/24": {"id": "0", "networksrc": "ov", "networkdst": "lan", "gateway": "10.3.0.9"}
    }
