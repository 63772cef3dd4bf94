"""The typed platform model: names, groups, addresses, platform files (no root)."""

from __future__ import annotations

import pytest

from pydistem.errors import ValidationError
from pydistem.model.addressing import AddressPool
from pydistem.model.names import expand_group
from pydistem.model.platform_file import load_platform, platform_from_dict
from pydistem.model.specs import VNetwork, VNode
from pydistem.model.validate import parse


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("node", ["node"]),
        ("node-[1-3]", ["node-1", "node-2", "node-3"]),
        ("n[08-10]x", ["n08x", "n09x", "n10x"]),
    ],
)
def test_expand_group(pattern: str, expected: list[str]) -> None:
    assert expand_group(pattern) == expected


@pytest.mark.parametrize("pattern", ["node-[3-1]", "node-[1-2", "a[1-2]b[3-4]"])
def test_expand_group_refuses(pattern: str) -> None:
    with pytest.raises(ValidationError) as err:
        expand_group(pattern, "vnodes[0].name")
    assert err.value.field == "vnodes[0].name"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bad;rm", "shell metacharacters"),
        ("a/b", "'/'"),
        ("x" * 64, "at most 63"),
        ("", "empty"),
        ("-lead", "start with"),
    ],
)
def test_vnode_names_refused(name: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse(VNode, {"name": name}, "vnodes[2]")
    assert err.value.field == "vnodes[2].name"
    assert reason in err.value.reason


def test_viface_name_limited_to_ifnamsiz() -> None:
    with pytest.raises(ValidationError) as err:
        parse(VNode, {"name": "n", "vifaces": [{"name": "a" * 16}]})
    assert err.value.field == "vifaces[0].name"


def test_duplicate_viface_names() -> None:
    with pytest.raises(ValidationError) as err:
        parse(VNode, {"name": "n", "vifaces": [{"name": "if0"}, {"name": "if0"}]}, "vnodes[0]")
    assert err.value.field == "vnodes[0].vifaces[1].name"


@pytest.mark.parametrize(
    ("cidr", "reason"),
    [
        ("10.0.0.0", "prefix"),
        ("10.0.0.0/33", "CIDR"),
        ("nonsense", "CIDR"),
        ("10.0.0.0/31", "room"),
    ],
)
def test_vnetwork_cidr_refused(cidr: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse(VNetwork, {"name": "n", "address": cidr})
    assert err.value.field == "address"
    assert reason in err.value.reason


def test_vnetwork_host_bits_accepted_and_normalised() -> None:
    assert parse(VNetwork, {"name": "n", "address": "10.144.0.1/27"}).address == "10.144.0.0/27"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///a/../etc/shadow.tar.gz", "'..'"),
        ("http://x/img.tar.gz", "only file://"),
        ("file://host/img.tar.gz", "no host"),
        ("file:///img.zip", "tar archive"),
    ],
)
def test_image_urls_refused(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse(VNode, {"name": "n", "image": url}, "vnodes[0]")
    assert err.value.field == "vnodes[0].vfilesystem.image"
    assert reason in err.value.reason


def test_bare_path_image_gets_file_scheme() -> None:
    v = parse(VNode, {"name": "n", "image": "/root/img.tar.gz", "shared": False})
    assert v.vfilesystem is not None
    assert v.vfilesystem.image == "file:///root/img.tar.gz"
    assert v.vfilesystem.shared is False


def test_address_pool_allocates_in_order_and_skips_claimed() -> None:
    pool = AddressPool("10.0.0.0/29")
    pool.claim("a", "10.0.0.2")
    assert [pool.allocate("f") for _ in range(5)] == [
        "10.0.0.1",
        "10.0.0.3",
        "10.0.0.4",
        "10.0.0.5",
        "10.0.0.6",
    ]
    with pytest.raises(ValidationError, match="no free address"):
        pool.allocate("f")


@pytest.mark.parametrize(
    ("address", "reason"),
    [("10.1.0.1", "outside"), ("10.0.0.0", "network or broadcast"), ("10.0.0.7", "broadcast")],
)
def test_address_pool_refuses(address: str, reason: str) -> None:
    pool = AddressPool("10.0.0.0/29")
    with pytest.raises(ValidationError, match=reason):
        pool.claim("vifaces[0].address", address)


def test_address_pool_refuses_duplicates_and_reserves_tail() -> None:
    pool = AddressPool("10.0.0.0/29", reserved_tail=2)
    pool.claim("x", "10.0.0.1")
    with pytest.raises(ValidationError, match="already used"):
        pool.claim("x", "10.0.0.1")
    assert pool.capacity == 4


def test_platform_file_example_from_the_issue(tmp_path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        """
vnetworks: [{name: net0, address: 10.144.0.0/22}]
vnodes:
  - {name: "node-[1-3]", runtime: lxc, image: file:///path/image.tar.gz, host: auto,
     vifaces: [{name: if0, vnetwork: net0}]}
  - {name: probe, runtime: netns, vifaces: [{name: if0, vnetwork: net0, address: 10.144.0.200,
     output: {bandwidth: 10mbps}}]}
"""
    )
    p = load_platform(f)
    assert [v.name for v in p.vnodes] == ["node-1", "node-2", "node-3", "probe"]
    assert p.vnodes[0].host is None
    assert p.vnodes[3].vifaces[0].output is not None
    assert p.vnodes[3].vifaces[0].output.bandwidth == "10mbps"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"vnodez": []}, "vnodez"),
        ({"vnodes": [{"name": "a", "cpus": 3}]}, "vnodes[0].cpus"),
        ({"vnodes": [{"runtime": "lxc"}]}, "vnodes[0].name"),
        ({"vnetworks": [{"name": "n"}]}, "vnetworks[0].address"),
        (
            {
                "vnodes": [
                    {"name": "a", "vifaces": [{"name": "if0", "output": {"bandwidth": "-1mbit"}}]}
                ]
            },
            "vnodes[0].vifaces[0].output.bandwidth",
        ),
    ],
)
def test_platform_file_errors_name_the_field(doc: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        platform_from_dict(doc)
    assert err.value.field == field


def test_platform_file_not_yaml(tmp_path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("vnodes: [")
    with pytest.raises(ValidationError, match="not valid YAML"):
        load_platform(f)
