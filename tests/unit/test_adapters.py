"""Testbed adapters without a testbed: the registry, option validation with field names,
reservations on disk, secrets, and the OAR request the g5k adapter builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydistem.adapters import registry
from pydistem.adapters.base import Capabilities, Reservation, machine_from_dict
from pydistem.adapters.credentials import Secret, grid5000_credentials, redact
from pydistem.adapters.g5k import G5kAdapter, walltime_seconds
from pydistem.adapters.lifecycle import ReservationSession, release_policy, release_saved
from pydistem.adapters.local import LocalAdapter
from pydistem.adapters.state import ReservationStore
from pydistem.errors import NotFound, ValidationError
from pydistem.model.machines import Machine


def test_builtin_adapters_are_entry_points() -> None:
    assert {"local", "ssh", "g5k"} <= set(registry.names())
    assert registry.load("g5k") is G5kAdapter
    listed = {r.name: r for r in registry.listing()}
    assert listed["g5k"].info is not None
    assert "routable_subnets" in listed["g5k"].info["capabilities"]
    assert listed["local"].info["capabilities"] == ["bare_metal", "layer2"]


@pytest.mark.parametrize(
    ("section", "field"),
    [
        (None, "testbed"),
        ({}, "testbed.adapter"),
        ({"adapter": "nope"}, "testbed.adapter"),
        ({"adapter": "local", "site": "x"}, "testbed.site"),
        ({"adapter": "g5k"}, "testbed.site"),
        ({"adapter": "g5k", "site": "rennes", "walltime": "1:75"}, "testbed.walltime"),
        ({"adapter": "g5k", "site": "rennes", "nodes": 0}, "testbed.nodes"),
        ({"adapter": "g5k", "site": "Rennes!"}, "testbed.site"),
        ({"adapter": "g5k", "site": "rennes", "kavlan": "kavlan"}, "testbed.kavlan"),
        (
            {"adapter": "g5k", "site": "rennes", "environment": "e", "kavlan": "kavlan-local"},
            "testbed.kavlan",
        ),
        ({"adapter": "g5k", "site": "rennes", "subnets": "slash_8=1"}, "testbed.subnets"),
        ({"adapter": "g5k", "site": "rennes", "gateway": "a b"}, "testbed.gateway"),
        (
            {"adapter": "g5k", "site": "rennes", "resources": "nodes=1", "nodes": 3},
            "testbed.resources",
        ),
        ({"adapter": "g5k", "site": "rennes", "colour": 1}, "testbed.colour"),
        ({"adapter": "ssh"}, "testbed.machines"),
        ({"adapter": "ssh", "machines": ["a", "b:99999"]}, "machines:2"),
        ({"adapter": "ssh", "machines": ["a"], "bootstrap": {"colour": 1}}, "bootstrap.colour"),
        (
            {"adapter": "g5k", "site": "rennes", "bootstrap": {"agent_port": 0}},
            "bootstrap.agent_port",
        ),
    ],
)
def test_bad_testbed_sections_name_the_field(section: object, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        registry.create(section)  # type: ignore[arg-type]
    assert err.value.field.endswith(field), err.value


def test_release_key_is_checked_and_not_passed_to_the_adapter() -> None:
    assert release_policy({"adapter": "local", "release": True}) is True
    assert release_policy({"adapter": "local"}) is None
    with pytest.raises(ValidationError) as err:
        release_policy({"release": "yes"})
    assert err.value.field == "testbed.release"
    session = ReservationSession.from_section({"adapter": "local", "release": False})
    assert isinstance(session.adapter, LocalAdapter)


def test_walltime_forms() -> None:
    assert walltime_seconds("1:30:00") == 5400
    assert walltime_seconds("2") == 7200
    assert walltime_seconds("0:45") == 2700
    assert walltime_seconds(59) == 59
    for bad in ("", "1:2:3:4", "0", "x"):
        with pytest.raises(ValidationError):
            walltime_seconds(bad)


def test_g5k_oarsub_command_line() -> None:
    from execo_g5k.oar import get_oarsub_commandline

    adapter = registry.create(
        {
            "adapter": "g5k",
            "site": "rennes",
            "cluster": "paravance",
            "nodes": 2,
            "walltime": "1:30:00",
            "environment": "debian12-min",
            "subnets": "slash_22=1",
            "kavlan": "kavlan-local",
            "gateway": "alice@kavlan-1.rennes.grid5000.fr",  # an isolated VLAN's own
            "name": "exp1",
        }
    )
    line = get_oarsub_commandline(adapter.submission())  # type: ignore[attr-defined]
    assert line.startswith(
        "oarsub -l \"slash_22=1+{type='kavlan-local'}/vlan=1+{cluster='paravance'}/nodes=2,"
        'walltime=1:30:0"'
    ), line
    assert '-t "deploy"' in line and '-n "exp1"' in line
    plain = registry.create({"adapter": "g5k", "site": "lyon", "resources": "{gpu_count>0}/host=1"})
    line = get_oarsub_commandline(plain.submission())  # type: ignore[attr-defined]
    assert '-l "{gpu_count>0}/host=1,walltime=1:0:0"' in line and "deploy" not in line


def test_reservations_round_trip_on_disk(tmp_path: Path) -> None:
    store = ReservationStore(tmp_path / "res")
    assert store.all() == []
    gw = Machine("access.grid5000.fr", user="alice")
    res = Reservation(
        "local",
        "42",
        machines=[
            Machine("n-1.rennes.grid5000.fr", gateway=gw, site="rennes", hardware={"cores": 8})
        ],
        data={"site": "rennes"},
    )
    path = store.save(res)
    assert path.stat().st_mode & 0o777 == 0o600
    back = store.get("42")
    assert back.to_dict() == res.to_dict()
    assert back.machines[0].gateway == gw and back.machines[0].hardware == {"cores": 8}
    assert store.get("local-42").key == "local-42"
    with pytest.raises(NotFound):
        store.get("43")
    assert release_saved(store) == [back] or store.all() == []
    assert store.all() == []
    assert machine_from_dict({"host": "h"}) == Machine("h")


def test_local_adapter_reserves_this_machine(tmp_path: Path) -> None:
    store = ReservationStore(tmp_path)
    session = ReservationSession.from_section({"adapter": "local"}, store=store)
    res = session.reserve()
    assert [m.host for m in res.machines] == ["localhost"]
    assert [r.key for r in store.all()] == ["local-localhost"]
    session.release()
    assert store.all() == []
    assert Capabilities(vms=True, extend=True).names() == ["vms", "extend"]


def test_ssh_adapter_reads_a_machine_file_with_a_gateway(tmp_path: Path) -> None:
    mf = tmp_path / "machines"
    mf.write_text("# two machines\nalice@n1:2201\nn2\n")
    adapter = registry.create(
        {"adapter": "ssh", "machinefile": str(mf), "gateway": "bob@gw.example.org:2222"}
    )
    res = adapter.reserve()
    assert [str(m) for m in res.machines] == [
        "alice@n1:2201 via bob@gw.example.org:2222",
        "root@n2 via bob@gw.example.org:2222",
    ]
    assert adapter.reserve().id == res.id  # the same list is the same reservation


def test_secrets_never_show(tmp_path: Path) -> None:
    s = Secret("hunter2-token")
    assert str(s) == repr(s) == f"{s}" == "***"
    assert "hunter2" not in repr({"password": s})
    assert redact("auth failed for hunter2-token") == "auth failed for ***"
    (tmp_path / ".python-grid5000.yaml").write_text(
        "username: alice\npassword: hunter3-token\nuri: http://127.0.0.1:1/stable/\n"
    )
    creds = grid5000_credentials(tmp_path / ".python-grid5000.yaml")
    assert creds.username == "alice" and creds.password is not None
    assert creds.password.reveal() == "hunter3-token"
    assert "hunter3" not in repr(creds)
    assert grid5000_credentials(tmp_path / "absent.yaml").username is None
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ValidationError):
        grid5000_credentials(tmp_path / "bad.yaml")
