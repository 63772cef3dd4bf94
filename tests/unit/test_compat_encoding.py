"""Distem compat encoding: form + JSON-in-a-field decoding, shapes, and the error convention."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from pydistem.coordinator.app import create_app
from pydistem.coordinator.compat import encoding, shapes
from pydistem.coordinator.compat.encoding import DistemError
from pydistem.coordinator.compat.router import allowed
from pydistem.coordinator.service import Coordinator
from pydistem.errors import (
    AlreadyExists,
    Conflict,
    KernelError,
    NotFound,
    Unsupported,
    ValidationError,
)
from pydistem.model.specs import Traffic, VNetwork, VNode
from pydistem.state.store import Store


def test_absent_bare_and_empty_fields_are_not_given() -> None:
    form = encoding.parse_form(b"target&desc=%7B%7D&async=false&name=")
    assert form == {"target": None, "desc": "{}", "async": "false", "name": None}
    assert encoding.json_field(form, "target", "dflt") == "dflt"
    assert encoding.json_field(form, "name", []) == []
    assert encoding.json_field(form, "missing", 7) == 7
    assert encoding.json_field(form, "desc") == {}


def test_json_inside_a_form_field_and_plus_as_space() -> None:
    body = "command=hostname+%26%26+echo+a%3Db%26c&names=%5B%22n1%22%2C%22n2%22%5D"
    form = encoding.parse_form(body)
    assert form["command"] == "hostname && echo a=b&c"
    assert encoding.json_field(form, "names") == ["n1", "n2"]


def test_bad_json_is_a_400_parser_error() -> None:
    with pytest.raises(DistemError) as err:
        encoding.json_field({"desc": "{nope"}, "desc")
    assert (err.value.status, err.value.name) == (400, "ParserError")


def test_target_may_be_a_raw_string() -> None:
    assert encoding.json_or_string({"target": "localhost"}, "target") == "localhost"
    assert encoding.json_or_string({"target": '["a","b"]'}, "target") == ["a", "b"]


def test_downkeys_and_numbers_as_strings() -> None:
    desc = {"OUTPUT": {"Bandwidth": {"RATE": "1mbps"}}, "VIfaces": [{"Name": "if0"}]}
    assert encoding.downkeys(desc) == {
        "output": {"bandwidth": {"rate": "1mbps"}},
        "vifaces": [{"name": "if0"}],
    }
    assert encoding.as_number("timeout", "60") == 60.0
    with pytest.raises(DistemError):
        encoding.as_number("timeout", "soon")
    assert [encoding.parse_bool(v) for v in (None, "", "no", "0", "false", "true", True)] == [
        False,
        False,
        False,
        False,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(
    ("exc", "status", "name"),
    [
        (ValidationError("address", "bad"), 400, "InvalidParameterError"),
        (AlreadyExists("vnode", "n1"), 400, "AlreadyExistingResourceError"),
        (NotFound("vnode", "n9"), 404, "ResourceNotFoundError"),
        (Conflict("vnode n1 is RUNNING"), 404, "BusyResourceError"),
        (Unsupported("vxlan"), 501, "NotImplementedError"),
        (KernelError("veth", "EEXIST"), 500, "ShellError"),
    ],
)
def test_error_mapping(exc: Exception, status: int, name: str) -> None:
    err = encoding.translate(exc)  # type: ignore[arg-type]
    assert (err.status, err.name) == (status, name)
    resp = encoding.error_response(err)
    assert resp.status_code == status
    assert json.loads(resp.body) == {}
    header = resp.headers[encoding.ERROR_HEADER]
    assert header.startswith(name + " ") and header.endswith(" |")


def test_error_header_is_one_latin1_line() -> None:
    assert encoding.header_value("ShellError", "a\nb ✓") == "ShellError a b ? |"


def test_allow_list() -> None:
    loop = ["127.0.0.0/8", "::1/128"]
    assert allowed("127.0.0.1", loop) and allowed("::1", loop)
    assert not allowed("10.0.0.1", loop)
    assert not allowed("testclient", loop) and not allowed(None, loop)
    assert allowed("10.1.2.3", ["10.0.0.0/8"])


def test_traffic_both_ways() -> None:
    desc = {"bandwidth": {"rate": "10mbps"}, "latency": {"delay": "5ms"}, "loss": {"percent": "2%"}}
    fields = shapes.traffic_desc(desc, "output")
    assert fields == {"bandwidth": "10mbps", "latency": "5ms", "loss": "2%"}
    assert shapes.traffic(Traffic(**fields)) == {
        "bandwidth": {"rate": "10mbps"},
        "latency": {"delay": "5ms", "jitter": None},
        "loss": {"percent": "2%"},
    }
    assert shapes.traffic_desc({"bandwidth": {}}, "output") is None  # bw=unlimited
    assert shapes.traffic_desc({}, "output") is None
    with pytest.raises(DistemError):
        shapes.traffic_desc({"speed": {"x": 1}}, "output")


def test_vnode_desc_and_shape() -> None:
    desc = encoding.downkeys(
        {
            "HOST": "localhost",
            "vfilesystem": {"image": "/tmp/i.tgz", "shared": "true"},
            "vifaces": [{"name": "if0", "vnetwork": "vnet", "default": "true"}],
        }
    )
    doc = shapes.vnode_desc("node1", desc, {})
    assert doc["runtime"] == "lxc" and doc["host"] == "localhost"
    assert doc["vifaces"] == [{"name": "if0", "vnetwork": "vnet", "default": True}]
    limited = shapes.vnode_desc("n", {"vcpu": {"corenb": "2"}, "vmem": {"mem": "512"}}, None)
    assert limited["cpu"] == {"cores": "2", "frequency": 1.0}
    assert limited["memory"] == {"limit": "512"}
    net = VNetwork(name="vnet", address="10.144.0.0/22")
    v = VNode.model_validate({**doc, "vifaces": [{**doc["vifaces"][0], "address": "10.144.0.1"}]})
    shape = shapes.vnode(v, 0, {"vnet": net}, {})
    assert list(shape) == [
        "id",
        "name",
        "status",
        "vfilesystem",
        "vifaces",
        "vcpu",
        "vmem",
        "mode",
        "host",
        "ssh_key",
    ]
    assert shape["vfilesystem"]["image"] == "file:///tmp/i.tgz"
    assert shape["vifaces"][0]["address"] == "10.144.0.1/22"
    assert list(shapes.vnetwork(net, {"node1": v})) == [
        "name",
        "address",
        "vnodes",
        "vroutes",
        "opts",
    ]
    assert shapes.vnetwork_desc("n", "10.0.0.5/255.255.255.0", None)["address"] == "10.0.0.0/24"


def _app(**kw: object) -> tuple[Coordinator, TestClient]:
    c = Coordinator(Store(":memory:"), connect=None, local_agent=None)  # type: ignore[arg-type]
    return c, TestClient(create_app(c, "tok", **kw), client=("127.0.0.1", 50000))  # type: ignore[arg-type]


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_compat_off_answers_404_on_distem_paths() -> None:
    c, client = _app()
    try:
        assert client.get("/vnodes").status_code == 404
    finally:
        c.close()


def test_compat_routes_without_kernel() -> None:
    c, client = _app(distem_compat=True)
    try:
        r = client.post("/vnetworks", content="name=vnet&address=10.144.0.0%2F22", headers=FORM)
        assert r.status_code == 200, r.headers
        assert r.json() == {
            "name": "vnet",
            "address": "10.144.0.0/22",
            "vnodes": [],
            "vroutes": {},
            "opts": {"network_type": "classical"},
        }
        r = client.post("/vnetworks", content="name=vnet&address=10.145.0.0%2F22", headers=FORM)
        assert r.status_code == 400
        assert r.headers[encoding.ERROR_HEADER].startswith("AlreadyExistingResourceError")
        r = client.post("/vnetworks", content="name=v2&address=bad", headers=FORM)
        assert r.status_code == 400
        assert list(client.get("/vnetworks").json()) == ["vnet"]
        r = client.get("/vnodes/node9")
        assert (r.status_code, r.json()) == (404, {})
        assert r.headers[encoding.ERROR_HEADER] == "ResourceNotFoundError vnode node9 |"
        r = client.post("/vnodes/n1", content="desc=%7Bbad", headers=FORM)
        assert r.headers[encoding.ERROR_HEADER].startswith("ParserError")
        r = client.post("/events/trace", content="", headers=FORM)  # served: events.md
        assert r.status_code == 400
        assert "resource" in r.headers[encoding.ERROR_HEADER]
        r = client.post("/vplatform/alevin", content="", headers=FORM)
        assert r.status_code == 501
        assert "alevin" in r.headers[encoding.ERROR_HEADER]
        r = client.post("/global_arptable", content="", headers=FORM)  # no pnode: nothing to do
        assert (r.status_code, r.content) == (200, b"")
        assert client.get("/pnodes").json() == {}
        assert client.get("/vplatform").json()["vplatform"]["vnetworks"]["vnet"]["name"] == "vnet"
        # the PyPI distem client: trailing slashes, type=delete, Python's False
        body = "names=%5B%5D&type=delete&async=False"
        assert client.put("/vnodes/", content=body, headers=FORM).json() == []
        r = client.put("/vnodes", content="type=jump", headers=FORM)
        assert r.status_code == 400 and "type" in r.headers[encoding.ERROR_HEADER]
        r = client.post("/pnodes", content="target=localhost&desc=%7Bx", headers=FORM)
        assert r.headers[encoding.ERROR_HEADER].startswith("ParserError desc")
        assert client.delete("/vnetworks/vnet").status_code == 200
        assert client.get("/vnetworks").json() == {}
    finally:
        c.close()


def test_compat_refuses_callers_outside_the_allow_list() -> None:
    c, client = _app(distem_compat=True, compat_allow=["10.0.0.0/8"])
    try:
        r = client.get("/vnodes")
        assert (r.status_code, r.json()) == (403, {})
        assert r.headers[encoding.ERROR_HEADER].startswith("ForbiddenError 127.0.0.1")
    finally:
        c.close()


def test_vnode_mode_both_ways() -> None:
    assert shapes.mode_desc("gateway") == "GATEWAY"
    assert shapes.vnode_desc("n1", {"mode": "Normal"}, None)["mode"] == "NORMAL"
    assert "mode" not in shapes.vnode_desc("n1", {}, None)
    with pytest.raises(DistemError) as err:
        shapes.vnode_desc("n1", {"mode": "router"}, None)
    assert err.value.status == 400 and "mode" in err.value.message
    v = VNode(name="n1", mode="GATEWAY")
    assert shapes.vnode(v, 0, {}, {})["mode"] == "GATEWAY"


def test_saved_vroutes_of_a_vplatform() -> None:
    from pydistem.coordinator.compat.vplatform import _vroutes

    saved = {
        "name": "left",
        "vroutes": {
            "10.2.0.0/24": {
                "id": "0",
                "networksrc": "left",
                "networkdst": "right",
                "gateway": "10.1.0.2",
            },
        },
    }
    assert _vroutes(saved, 0) == [{"source": "left", "destination": "right", "gateway": "10.1.0.2"}]
    no_src = {"name": "left", "vroutes": [{"networkdst": "right", "gateway": "10.1.0.2"}]}
    assert _vroutes(no_src, 0)[0]["source"] == "left"
    with pytest.raises(DistemError) as err:
        _vroutes({"name": "left", "vroutes": {"x": {"networkdst": "right"}}}, 3)
    assert err.value.status == 400 and "vnetworks[3].vroutes[0]" in err.value.message
    assert _vroutes({"name": "left", "vroutes": {}}, 0) == []
