"""The error tree's JSON shape round trip, and the journal's replay (no root)."""

from __future__ import annotations

from pathlib import Path

from pydistem import errors
from pydistem.agent.journal import Journal


def test_error_round_trip_keeps_class_and_data() -> None:
    for err in [
        errors.ValidationError("vnodes[0].name", "bad"),
        errors.AlreadyExists("vnode", "n1"),
        errors.NotFound("vnode", "n9"),
        errors.KernelError("create veth", "File exists", 17),
        errors.Conflict("busy"),
    ]:
        doc = err.to_dict()
        assert doc["ok"] is False and doc["status"] == err.status and doc["message"]
        back = errors.from_dict(doc, err.status)
        assert type(back) is type(err)
        assert str(back) == str(err)
    back = errors.from_dict(errors.ValidationError("a.b", "why").to_dict(), 400)
    assert isinstance(back, errors.ValidationError)
    assert (back.field, back.reason) == ("a.b", "why")


def test_unknown_error_code_becomes_root_error() -> None:
    back = errors.from_dict({"error": "martian", "message": "boom"}, 599)
    assert type(back) is errors.PydistemError
    assert back.message == "boom"


def test_journal_replays_live_objects_in_order(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    j.add("netns", "/run/netns/a")
    j.add("link", "pdv1", type="veth")
    j.add("link", "pdv2")
    j.remove("link", "pdv1")
    j.add("link", "pdv1", type="veth")  # re-created later: newest position
    j.close()
    again = Journal(tmp_path / "j")
    assert [(e.kind, e.id) for e in again.live()] == [
        ("netns", "/run/netns/a"),
        ("link", "pdv2"),
        ("link", "pdv1"),
    ]
    assert again.live("link")[1].data == {"type": "veth"}


def test_journal_survives_a_torn_last_line_and_compacts(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    j.add("dir", "/x")
    j.add("dir", "/y")
    j.remove("dir", "/x")
    j.close()
    with (tmp_path / "j").open("a") as fh:
        fh.write('{"op": "add", "kind": "di')  # crash mid-write
    j = Journal(tmp_path / "j")
    assert [e.id for e in j.live()] == ["/y"]
    j.compact()
    assert len((tmp_path / "j").read_text().splitlines()) == 1
    j.close()
