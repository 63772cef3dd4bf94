"""The Distem 1.x option syntax translated to client calls, as data (no coordinator)."""

from __future__ import annotations

import pytest

from pydistem.cli.distem1 import (
    Call,
    Distem1UsageError,
    FileText,
    coordinator_spec,
    ruby_inspect,
    sub_options,
    translate,
)


def calls(*argv: str) -> list[tuple[str, tuple]]:
    return [(c.method, c.args) for c in translate(list(argv)).calls]


def test_tutorial_sequence_translates_call_by_call():
    assert calls("--coordinator", "host=coord", "--init-pnode", "coord") == [
        ("pnode_init", (["coord"],))
    ]
    assert translate(["--coordinator", "host=coord", "--init-pnode", "a,b"]).coordinator == "coord"
    assert calls("--create-vnetwork", "vnetwork=vnet,address=10.144.0.0/22") == [
        ("vnetwork_create", ("vnet", "10.144.0.0/22"))
    ]
    assert calls("--create-vnode", "vnode=node1,pnode=coord,rootfs=/root/image.tgz") == [
        (
            "vnode_create",
            ("node1", {"vfilesystem": {"image": "/root/image.tgz", "shared": False},
                       "host": "coord"}, None),
        )
    ]  # fmt: skip
    assert calls("--create-viface", "vnode=node1,iface=if0,vnetwork=vnet,default=true") == [
        ("viface_create", ("node1", "if0", {"vnetwork": "vnet", "default": True}))
    ]
    assert calls("--start-vnode", "node1") == [("vnode_start", ("node1",))]
    assert calls("--stop-vnode", "node1") == [("vnode_stop", ("node1",))]
    assert calls("--remove-vnode", "node1") == [("vnode_remove", ("node1",))]
    assert calls("--get-vnode-info", "node1") == [("vnode_info", ("node1",))]
    assert calls("-q") == [("quit", ())]


def test_execute_prints_lines_and_keeps_equals_in_command():
    plan = translate(["--execute", "vnode=n1,command=hostname && echo a=b"])
    assert plan.calls == [Call("vnode_execute", ("n1", "hostname && echo a=b"), show="lines")]


def test_ssh_keys_are_read_when_the_plan_runs():
    (call,) = translate(
        ["--create-vnode", "vnode=v,rootfs=file:///i.tar.gz,sshprivkey=/k,sshpubkey=/k.pub"]
    ).calls
    assert call.args[2] == {"private": FileText("/k"), "public": FileText("/k.pub")}


def test_options_run_in_command_line_order_and_combine():
    plan = translate(["--init-pnode", "n1", "--max-vifaces", "250", "--start-vnode=v1", "-q"])
    assert [c.method for c in plan.calls] == ["pnode_init", "vnode_start", "quit"]
    assert plan.calls[1].args == ("v1",)
    assert any("max-vifaces" in n for n in plan.notes)


@pytest.mark.parametrize(
    ("argv", "method"),
    [
        (["--start", "v"], "vnode_start"),  # unambiguous abbreviation
        (["-e", "vnode=v,command=ls"], "vnode_execute"),  # -e completes to --execute
        (["--get-pnode-info"], "pnodes_info"),
        (["--get-vnetwork-info", "vnet"], "vnetwork_info"),
        (["--get-vnode-info"], "vnodes_info"),
        (["--remove-vnode"], "vnodes_remove"),
        (["--remove-vnetwork"], "vnetworks_remove"),
        (["--remove-vnetwork", "vnet"], "vnetwork_remove"),
        (["--remove-viface", "vnode=v,iface=if0"], "viface_remove"),
        (["--save-config", "configfile=/tmp/x.json"], "platform_info"),
        (["--save-config"], "platform_info"),
        (["--load-config", "format=JSON,configfile=/tmp/p.json"], "platform_deploy"),
    ],
)
def test_each_option_maps_to_a_client_method(argv, method):
    assert translate(argv).calls[0].method == method


def test_optional_argument_is_not_taken_from_the_next_option():
    assert calls("--remove-vnode", "-q") == [("vnodes_remove", ()), ("quit", ())]


def test_config_viface_limits_and_direction():
    (call,) = translate(["--config-viface", "vnode=v,iface=if0,bw=10mbps,latency=5ms"]).calls
    limits = {"bandwidth": "10mbps", "latency": "5ms"}
    assert call == Call("viface_traffic", ("v", "if0", limits, limits))
    (call,) = translate(
        ["--config-viface", "vnode=v,iface=if0,bw=unlimited,loss=2%,direction=OUTPUT"]
    ).calls
    assert call == Call("voutput_update", ("v", "if0", {"loss": "2%"}))
    (call,) = translate(["--config-viface", "vnode=v,iface=if0,latency=1ms,direction=input"]).calls
    assert call.method == "vinput_update"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--create-vnode", "vnode=a"],
         "The mandatory sub-option rootfs must be set with --create-vnode"),
        (["--create-vnetwork", "vnetwork=n,address=10.0.0.0/8,mtu=9000"],
         "The sub-option mtu is not supported with --create-vnetwork"),
        (["--bogus"], "invalid option: --bogus"),
        (["-x"], "invalid option: -x"),
        (["--get"], "ambiguous option: --get"),
        (["-c"], "ambiguous option: -c"),
        (["--start-vnode"], "missing argument: --start-vnode"),
        (["--config-viface", "vnode=v,iface=i"], "At lease one of the two parameters"),
        (["--config-viface", "vnode=v,iface=i,bw=1mbit,direction=UP"], "INPUT or OUTPUT"),
        (["--set-vcpu", "vnode=v,cpu_speed=1"], "mandatory sub-option corenb"),
        (["--copy-to", "vnode=v,src=a,dest=b"], "not supported by pydistem"),
        (["--quit", "n1"], "--quit PNODE is not supported"),
        (["--load-config", "format=SIMGRID"], "only JSON"),
        (["--complete-vroutes=x"], "needless argument"),
    ],
)  # fmt: skip
def test_bad_command_lines_fail_like_distem(argv, message):
    with pytest.raises(Distem1UsageError) as info:
        translate(argv)
    assert message in info.value.message
    assert info.value.exit_code == 1


def test_no_option_and_leftovers_and_help():
    with pytest.raises(Distem1UsageError) as info:
        translate([])
    assert info.value.message == "Choose at least one option" and info.value.exit_code == 1
    with pytest.raises(Distem1UsageError) as info:
        translate(["--start-vnode", "v", "stray"])
    assert info.value.usage and info.value.exit_code == 0
    with pytest.raises(Distem1UsageError) as info:
        translate(["-h"])
    assert info.value.usage and info.value.exit_code == 0


def test_unsupported_option_changes_nothing_even_after_good_ones():
    # translation fails before any call runs: nothing half-done
    with pytest.raises(Distem1UsageError):
        translate(["--start-vnode", "v", "--copy-to", "vnode=v,src=a,dest=b"])


def test_sub_options_split_like_ruby():
    assert sub_options("vnode=n,command=a=b") == {"vnode": "n", "command": "a=b"}
    assert sub_options("novalue,k=v") == {"k": "v"}


def test_coordinator_spec():
    assert coordinator_spec("host=h") == "h"
    assert coordinator_spec("host=h,port=4600") == "h:4600"
    assert coordinator_spec("h:4600") == "h:4600"
    with pytest.raises(Distem1UsageError, match="mandatory sub-option host"):
        coordinator_spec("port=1")


def test_ruby_inspect():
    data = {"name": "n1", "ok": True, "x": None, "l": [1, False], "s": 'a"b#{c}'}
    assert ruby_inspect(data) == (
        '{"name"=>"n1", "ok"=>true, "x"=>nil, "l"=>[1, false], "s"=>"a\\"b\\#{c}"}'
    )


def test_vroute_options_translate_to_the_vroute_calls():
    assert calls("--create-vroute", "vnetsrc=a,vnetdest=b,gateway=10.0.0.1") == [
        ("vroute_create", ("a", "b", "10.0.0.1"))
    ]
    assert calls("--complete-vroutes") == [("vroute_complete", ())]
