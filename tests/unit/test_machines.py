"""Machine specs and machine files (hostname normalisation by how a host is reached)."""

from __future__ import annotations

import pytest

from pydistem.errors import ValidationError
from pydistem.model.machines import Machine, parse_machine_lines


def test_parse_forms() -> None:
    assert Machine.parse("node-1.lyon.grid5000.fr") == Machine("node-1.lyon.grid5000.fr")
    m = Machine.parse("alice@155.98.36.10:25011")
    assert (m.user, m.host, m.port, m.id) == ("alice", "155.98.36.10", 25011, "155.98.36.10:25011")
    assert Machine.parse("[fd00::2]:2222").host == "fd00::2"
    assert Machine.parse("Node-1.Example.ORG.").id == "node-1.example.org"


def test_same_ip_different_ports_are_different_machines() -> None:
    ms = parse_machine_lines(["alice@10.0.0.1:25010", "alice@10.0.0.1:25011"])
    assert len({m.id for m in ms}) == 2


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("root@host;rm -rf /", "not [user@]host[:port]"),
        ("host:0", "outside 1-65535"),
        ("host:70000", "outside 1-65535"),
        ("Bad User@host", "not [user@]host[:port]"),
        ("-host", "not a host name"),
    ],
)
def test_bad_specs_name_the_line(spec: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_machine_lines(["ok-host", spec], "machines.txt")
    assert err.value.field == "machines.txt:2"
    assert reason in err.value.reason


def test_duplicates_comments_and_empty() -> None:
    gw = Machine.parse("me@access.grid5000.fr")
    ms = parse_machine_lines(["# pnodes", "a", "", "b:2222  # second"], gateway=gw)
    assert [m.id for m in ms] == ["a", "b:2222"] and ms[0].gateway == gw
    assert str(ms[0]) == "root@a via me@access.grid5000.fr"
    with pytest.raises(ValidationError, match="already listed on line 1"):
        parse_machine_lines(["a", "A."])
    with pytest.raises(ValidationError, match="lists no machine"):
        parse_machine_lines(["# nothing"])
