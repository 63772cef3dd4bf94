"""Fitting a platform file to a reservation: vnetwork addresses from the reserved
subnets, and VXLAN chosen from the adapter's capabilities (pydistem.adapters.fit)."""

from __future__ import annotations

from typing import Any

import pytest

from pydistem.adapters import registry
from pydistem.adapters.base import Capabilities, Reservation
from pydistem.adapters.fit import fit, placeholders
from pydistem.errors import ValidationError
from pydistem.model.platform_file import platform_from_dict

G5K = registry.load("g5k").capabilities
SSH = registry.load("ssh").capabilities
RESERVED = ["10.158.4.0/22", "10.158.8.0/22"]
SITE_GW = "10.159.255.254"  # the Rennes /14's gateway, outside every reserved /22


def doc(*vnets: dict[str, Any]) -> dict[str, Any]:
    return {
        "vnetworks": list(vnets),
        "vnodes": [{"name": "n-[1-2]", "vifaces": [{"name": "if0", "vnetwork": "a"}]}],
    }


def test_vnetworks_without_address_or_with_testbed_get_the_reserved_subnets_in_order() -> None:
    d = doc(
        {"name": "a"},
        {"name": "b", "address": "10.144.0.0/24"},
        {"name": "c", "address": "testbed"},
    )
    out = fit(d, testbed="g5k", capabilities=G5K, subnets=RESERVED, machines=2)
    addresses = {v.name: v.address for v in out.platform.vnetworks}
    assert addresses == {"a": RESERVED[0], "b": "10.144.0.0/24", "c": RESERVED[1]}
    assert out.subnets == {"a": RESERVED[0], "c": RESERVED[1]}
    assert any("10.158.4.0/22" in line and "g5k" in line for line in out.decisions)
    assert d["vnetworks"][0] == {"name": "a"}  # the document itself is left alone


def test_an_explicit_testbed_index_is_kept_and_others_take_what_is_left() -> None:
    d = doc({"name": "a"}, {"name": "b", "address": "testbed:1"})
    out = fit(d, testbed="g5k", capabilities=G5K, subnets=RESERVED)
    assert [v.address for v in out.platform.vnetworks] == [RESERVED[1], RESERVED[0]]


@pytest.mark.parametrize(
    ("vnets", "subnets", "field", "words"),
    [
        ([{"name": "a"}, {"name": "b"}, {"name": "c"}], RESERVED, "vnetworks[2].address", "every"),
        ([{"name": "a", "address": "testbed:3"}], RESERVED, "vnetworks[0].address", "holds 2"),
        (
            [{"name": "a", "address": "testbed:1"}, {"name": "b", "address": "testbed:1"}],
            RESERVED,
            "vnetworks[1].address",
            "already",
        ),
        ([{"name": "a", "address": "testbed"}], [], "vnetworks[0].address", "slash_22=1"),
        ([{"name": "a"}], [], "vnetworks[0].address", "is required"),
    ],
)
def test_addresses_the_reservation_cannot_give_name_the_field(
    vnets: list[dict[str, Any]], subnets: list[str], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as err:
        fit(doc(*vnets), testbed="g5k", capabilities=G5K, subnets=subnets)
    assert err.value.field == field and words in str(err.value), str(err.value)


def test_a_testbed_without_routable_subnets_says_so() -> None:
    with pytest.raises(ValidationError, match="reserves no routable subnet"):
        fit(doc({"name": "a", "address": "testbed"}), testbed="ssh", capabilities=SSH)


def test_testbed_address_outside_distem_deploy_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError) as err:
        platform_from_dict(doc({"name": "a", "address": "testbed"}))
    assert err.value.field == "vnetworks[0].address" and "distem deploy" in str(err.value)


def test_no_layer2_makes_auto_vnetworks_vxlan_without_the_classic_probe() -> None:
    d = doc(
        {"name": "a", "address": "10.144.0.0/24", "root_interface": "eth0"},  # auto
        {"name": "b", "address": "10.145.0.0/24", "network_type": "auto"},
        {"name": "c", "address": "10.146.0.0/24", "network_type": "bridge"},
    )
    out = fit(d, testbed="ssh", capabilities=SSH, machines=2)
    a, b, c = out.platform.vnetworks
    assert (a.network_type, a.root_interface) == ("vxlan", None)  # never bridged on eth0
    assert "ssh" in (a.reason or "") and "eth0" in (a.reason or "")
    assert b.network_type == "vxlan" and c.network_type == "bridge"  # explicit: kept
    assert len(out.decisions) == 2


def test_layer2_or_a_single_machine_leaves_auto_to_the_coordinator() -> None:
    d = doc({"name": "a", "address": "10.144.0.0/24", "root_interface": "eth0"})
    assert (
        fit(d, testbed="g5k", capabilities=G5K, machines=2).platform.vnetworks[0].network_type
        == "auto"
    )
    one = doc({"name": "a", "address": "10.144.0.0/24"})
    assert (
        fit(one, testbed="ssh", capabilities=SSH, machines=1).platform.vnetworks[0].network_type
        == "auto"
    )
    # one machine but an uplink named: still never probed
    assert (
        fit(d, testbed="ssh", capabilities=SSH, machines=1).platform.vnetworks[0].network_type
        == "vxlan"
    )
    assert not Capabilities().layer2


def test_g5k_plans_and_reads_its_subnets() -> None:
    cls = registry.load("g5k")
    short = cls(cls.validate({"site": "rennes", "subnets": "/22"}))
    assert short.options.subnets == "slash_22=1" and short.planned_subnets() == [22]
    two = cls(cls.validate({"site": "rennes", "subnets": "slash_21=2"}))
    assert two.planned_subnets() == [21, 21]
    assert [str(n) for n in placeholders(two.planned_subnets())] == [
        "198.18.0.0/21",
        "198.18.8.0/21",
    ]
    res = Reservation("g5k", "1", data={"subnets": {"cidrs": RESERVED, "gateway": SITE_GW}})
    assert [str(n) for n in two.reserved_subnets(res)] == RESERVED
    assert two.subnets_gateway(res) == SITE_GW
    assert two.subnets_gateway(Reservation("g5k", "1", data={})) is None
    for bad in ("slash_23=1", "slash_22=0", "/8", "22"):
        with pytest.raises(ValidationError) as err:
            cls.validate({"site": "rennes", "subnets": bad})
        assert err.value.field == "testbed.subnets"


def test_vnetworks_filled_from_reserved_subnets_get_the_testbed_gateway_unless_set() -> None:
    d = doc(
        {"name": "a"},
        {"name": "b", "address": "testbed", "gateway": "10.158.8.254"},
        {"name": "c", "address": "10.144.0.0/24"},
    )
    out = fit(d, testbed="g5k", capabilities=G5K, subnets=RESERVED, gateway=SITE_GW)
    gateways = {v.name: v.gateway for v in out.platform.vnetworks}
    assert gateways == {"a": SITE_GW, "b": "10.158.8.254", "c": None}
    a, b, _ = out.platform.vnetworks
    assert not a.gateway_inside and b.gateway_inside
    lines = "\n".join(out.decisions)
    assert f"vnetwork a: {RESERVED[0]}" in lines
    assert f"default route via {SITE_GW} (the gateway g5k routes it through)" in lines
    assert "default route via 10.158.8.254 (the file's gateway)" in lines
    # no gateway known (e.g. while checking the file before reserving): none set
    plain = fit(d, testbed="g5k", capabilities=G5K, subnets=RESERVED)
    assert [v.gateway for v in plain.platform.vnetworks] == [None, "10.158.8.254", None]
    assert not any("default route" in line for line in plain.decisions if "vnetwork a" in line)
