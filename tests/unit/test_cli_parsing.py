"""argv parsing of the native ``distem`` subcommands, URL/token resolution, error output."""

from __future__ import annotations

import pytest

from pydistem.cli import main as cli
from pydistem.cli.output import error
from pydistem.client import Client, ExecResult, coordinator_url
from pydistem.errors import NotFound, ValidationError, from_dict


def parse(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def test_every_verb_parses():
    for argv in (
        ["pnode", "init"],
        ["pnode", "list"],
        ["pnode", "show", "localhost"],
        ["vnetwork", "create", "vnet", "10.144.0.0/24", "--type", "vxlan"],
        ["vnetwork", "list"],
        ["vnetwork", "show", "vnet"],
        ["vnetwork", "remove", "vnet"],
        ["vnode", "create", "n-[1-3]", "--image", "file:///i.tar.gz", "--vnetwork", "vnet"],
        ["vnode", "list"],
        ["vnode", "show", "n"],
        ["vnode", "start", "--all"],
        ["vnode", "stop", "n"],
        ["vnode", "remove", "n"],
        ["vnode", "freeze", "n"],
        ["vnode", "unfreeze", "n"],
        ["viface", "create", "n", "if1", "--vnetwork", "vnet"],
        ["viface", "remove", "n", "if1"],
        ["viface", "traffic", "n", "if0", "--bandwidth", "10mbit", "--direction", "output"],
        ["execute", "n", "--", "hostname"],
        ["wait", "--timeout", "5"],
        ["deploy", "f.yaml", "--run", "hostname"],
        ["destroy"],
        ["clean"],
        ["status"],
        ["image", "build", "--kind", "debian", "-o", "/tmp/d.tar.gz"],
    ):
        assert parse(*argv).command == argv[0]


def test_pnode_init_defaults_to_localhost():
    assert parse("pnode", "init").targets == ["localhost"]


def test_global_options_before_or_after_the_verb():
    args = parse("--json", "--coordinator", "h:1", "vnode", "list")
    assert args.json and args.coordinator == "h:1"
    args = parse("vnode", "list", "--json", "--coordinator", "h:2")
    assert args.json and args.coordinator == "h:2"
    assert parse("vnode", "list").json is False


def test_execute_keeps_the_command_whole():
    args = parse("execute", "node-1", "--", "ping", "-c", "1", "10.0.0.2")
    assert args.vnode == "node-1"
    assert args.cmd[-4:] == ["ping", "-c", "1", "10.0.0.2"]


def test_names_arg_expands_groups_and_all():
    assert cli.names_arg(["n-[1-3]", "x"]) == ["n-1", "n-2", "n-3", "x"]
    assert cli.names_arg([]) is None
    assert cli.names_arg(["all"]) is None
    assert cli.names_arg(["n"], everything=True) is None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--init-pnode", "a"], True),
        (["-q"], True),
        (["--coordinator", "host=h", "--start-vnode", "v"], True),
        (["--coordinator", "host=h"], True),
        (["--coordinator=host=h", "-q"], True),
        (["--coordinator", "h:1", "vnode", "list"], False),
        (["--json", "status"], False),
        (["vnode", "list"], False),
        (["-h"], False),
        (["--help"], False),
        ([], False),
    ],
)
def test_distem1_syntax_is_recognised(argv, expected):
    assert cli.is_distem1(argv) is expected


def test_coordinator_url(monkeypatch):
    monkeypatch.delenv("PYDISTEM_URL", raising=False)
    assert coordinator_url(None) == "http://127.0.0.1:4567"
    assert coordinator_url("h") == "http://h:4567"
    assert coordinator_url("h:4600") == "http://h:4600"
    assert coordinator_url("http://h:1/") == "http://h:1"
    monkeypatch.setenv("PYDISTEM_URL", "http://e:9")
    assert coordinator_url(None) == "http://e:9"


def test_token_from_env_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("PYDISTEM_TOKEN", "t1")
    with Client() as c:
        assert c._auth() == {"Authorization": "Bearer t1"}
    monkeypatch.delenv("PYDISTEM_TOKEN")
    (tmp_path / "token").write_text("t2\n")
    monkeypatch.setenv("PYDISTEM_TOKEN_FILE", str(tmp_path / "token"))
    with Client() as c:
        assert c._auth() == {"Authorization": "Bearer t2"}
        assert repr(c).startswith("<pydistem.Client http://")


def test_unreachable_coordinator_is_a_clear_error(capsys):
    # port 9 (discard) on loopback: nothing listens there
    assert cli.main(["--coordinator", "127.0.0.1:9", "vnode", "list"]) == 1
    err = capsys.readouterr().err
    assert "error: the coordinator is not running at http://127.0.0.1:9" in err
    assert "distemd -d" in err and "Traceback" not in err


def test_validation_errors_exit_2_with_field(capsys):
    exc = from_dict(
        {"ok": False, "status": 400, "error": "validation", "message": "vnodes[0].name: bad",
         "field": "vnodes[0].name", "reason": "bad"}, 400,
    )  # fmt: skip
    assert isinstance(exc, ValidationError)
    assert error(exc) == 2
    assert "error: vnodes[0].name: bad" in capsys.readouterr().err
    assert error(ValidationError("address", "outside vnet")) == 2
    assert "error: address: outside vnet" in capsys.readouterr().err
    assert error(NotFound("vnode", "x")) == 1
    assert "error: vnode 'x' not found" in capsys.readouterr().err


def test_local_validation_before_any_request(capsys, tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("vnetworks:\n  - name: 'bad;name'\n    address: 10.0.0.0/24\n")
    # the file is checked before the coordinator is even contacted (port 9: nothing there)
    assert cli.main(["--coordinator", "127.0.0.1:9", "deploy", str(bad)]) == 2
    assert "error: vnetworks[0].name:" in capsys.readouterr().err


def test_distem1_usage_errors_exit_like_distem(capsys):
    assert cli.main(["--create-vnode", "vnode=a"]) == 1
    assert "The mandatory sub-option rootfs" in capsys.readouterr().err
    assert cli.main(["--start-vnode", "v", "stray"]) == 0
    assert "Distem 1.x syntax" in capsys.readouterr().out


def test_help_shows_both_syntaxes(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["-h"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "deploy" in text and "--create-vnode" in text and "-q, --quit" in text


def test_exec_result():
    r = ExecResult.from_dict({"stdout": "a\nb\n", "stderr": "", "exit_code": 0})
    assert r.lines == ["a", "b"] and r.ok and str(r) == "a\nb\n"
    assert not ExecResult.from_dict({"stdout": "", "stderr": "x", "exit_code": 2}).ok
