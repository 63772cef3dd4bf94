"""Shaping plans as data: which tc objects a Traffic spec becomes (no root needed)."""

from __future__ import annotations

import pytest

from pydistem.errors import Unsupported, ValidationError
from pydistem.model.specs import Traffic
from pydistem.plugins.shapers.plan import (
    TcObject,
    TcOp,
    ifb_name,
    needs_netem,
    plan_changes,
    plan_direction,
    plan_redirect,
)


def _by_handle(ops):
    return {(o.obj, o.handle): o for o in ops}


def test_no_limit_is_no_op():
    assert plan_direction("pdv1", None) == []
    assert plan_direction("pdv1", Traffic()) == []


def test_bandwidth_is_an_htb_tree_with_a_fifo_leaf():
    ops = plan_direction("pdv1", Traffic(bandwidth="10mbit"), "input")
    assert [(o.op, o.obj, o.kind, o.handle, o.parent) for o in ops] == [
        ("replace", "qdisc", "htb", "1:", "root"),
        ("replace", "class", "htb", "1:1", "1:"),
        ("replace", "class", "htb", "1:2", "1:1"),
        ("replace", "qdisc", "pfifo", "20:", "1:2"),
    ]
    assert all(o.dev == "pdv1" for o in ops)
    assert ops[0].params == {"default": 2}
    assert ops[1].params["rate"] == ops[1].params["ceil"] == "10000000bit"
    assert ops[1].params["burst"] == 1250 + 1514  # 1 ms at the rate plus a frame
    assert ops[3].params["limit"] == 83  # 100 ms at 10 Mbit/s in full frames


def test_mbps_are_bytes():
    ops = plan_direction("pdv1", Traffic(bandwidth="10mbps"))
    assert ops[1].params["rate"] == "80000000bit"


def test_queue_is_the_leaf_limit_in_frames():
    ops = plan_direction("pdv1", Traffic(bandwidth="1mbit", queue="15140"))
    assert ops[-1].kind == "pfifo" and ops[-1].params == {"limit": 10}
    alone = plan_direction("pdv1", Traffic(queue="100k"))
    assert alone == [TcOp("replace", "qdisc", "pfifo", "pdv1", "20:", "root", {"limit": 68})]


def test_netem_alone_is_a_root_netem():
    t = Traffic(latency="20ms", jitter="2ms", loss="0.5%", duplication="1%", corruption="2",
                reordering="25%")  # fmt: skip
    assert needs_netem(t)
    [op] = plan_direction("pdv1", t)
    assert (op.kind, op.handle, op.parent) == ("netem", "10:", "root")
    assert op.params == {
        "delay": 20000,
        "jitter": 2000,
        "loss": 0.5,
        "duplicate": 1.0,
        "prob_corrupt": 2.0,
        "prob_reorder": 25.0,
        # no bandwidth: sized for 1 Gbit/s over 22 ms (1817 frames) + tc's 1000
        "limit": 1817 + 1000,
    }


def test_netem_sits_under_the_rate_class_and_its_limit_covers_the_delay():
    ops = plan_direction("pdv1", Traffic(bandwidth="1gbit", latency="100ms"))
    netem = _by_handle(ops)[("qdisc", "10:")]
    assert netem.parent == "1:2" and netem.kind == "netem"
    # 1 Gbit/s * 100 ms = 8257 frames in flight, plus a 100 ms queue
    assert netem.params["limit"] == 8257 + 8257
    assert ("qdisc", "20:") not in _by_handle(ops)


@pytest.mark.parametrize(
    ("traffic", "field"),
    [
        (Traffic(jitter="5ms"), "output.jitter"),
        (Traffic(latency="0ms", jitter="5ms"), "output.jitter"),
        (Traffic(reordering="10%"), "output.reordering"),
        (Traffic(latency="5ms", jitter_distribution="normal"), "output.jitter_distribution"),
    ],
)
def test_contradictions_name_the_field(traffic, field):
    with pytest.raises(ValidationError) as err:
        plan_direction("pdi1", traffic, "output")
    assert err.value.field == field


def test_jitter_without_latency_says_so():
    with pytest.raises(ValidationError, match=r"output\.jitter: needs a latency"):
        plan_direction("pdi1", Traffic(jitter="5ms"), "output")


def test_jitter_distribution_goes_with_the_netem_op():
    t = Traffic(latency="10ms", jitter="1ms", jitter_distribution="uniform")
    (netem,) = [op for op in plan_direction("x", t) if op.kind == "netem"]
    assert netem.params["jitter"] == 1000 and "distribution" not in netem.params
    t = Traffic(latency="10ms", jitter="1ms", jitter_distribution="pareto")
    (netem,) = [op for op in plan_direction("x", t) if op.kind == "netem"]
    assert netem.params["distribution"] == "pareto"


def test_distribution_table_is_sent_as_s16_data():
    import struct

    from pyroute2.netlink.rtnl.tcmsg import sched_netem, tcmsg

    from pydistem.plugins.shapers import netem_dist

    params = {"delay": 10_000, "jitter": 5_000, "limit": 1000}
    # a plain netem message first, as the shaper's probe does: pyroute2 then has compiled
    # the parent class's attribute map, which must not leak into ours
    plain = tcmsg()
    plain["attrs"] = [["TCA_KIND", "netem"], ["TCA_OPTIONS", sched_netem.get_parameters(params)]]
    plain.encode()
    msg = netem_dist.message(3, 0x20000, 0x10001, params, "normal")
    msg.encode()
    decoded = netem_dist._tcmsg_with_table(msg.data)
    decoded.decode()
    assert isinstance(decoded, tcmsg) and decoded.get_attr("TCA_KIND") == "netem"
    options = decoded.get_attr("TCA_OPTIONS")
    data = options.get_attr("TCA_NETEM_DELAY_DIST")
    values = struct.unpack(f"={len(data) // 2}h", data)
    # iproute2's normal table: 4096 values from -32768 upward, symmetric around 0
    assert len(values) == 4096 and values[0] == -32768 and abs(sum(values)) / 4096 < 100
    assert options["limit"] == 1000 and options["jitter"] > 0


def test_missing_distribution_table_is_unsupported(monkeypatch, tmp_path):
    from pydistem.plugins.shapers import netem_dist

    monkeypatch.setattr(netem_dist, "TABLE_DIRS", (str(tmp_path),))
    netem_dist.table.cache_clear()
    try:
        with pytest.raises(Unsupported, match=r"no pareto\.dist table .*iproute2"):
            netem_dist.table("pareto")
    finally:
        netem_dist.table.cache_clear()


def test_peer_latencies_are_classes_netems_and_filters_sorted_by_address():
    peers = {"10.0.0.20": "50ms", "10.0.0.3": "10ms"}
    ops = plan_direction("pdi1", Traffic(bandwidth="30mbit", loss="1%"), "output", peers)
    h = _by_handle(ops)
    # the cap is shared: each leaf is guaranteed a third, may borrow up to the cap
    assert h[("class", "1:2")].params["rate"] == "10000000bit"
    assert h[("class", "1:2")].params["ceil"] == "30000000bit"
    assert h[("class", "1:100")].parent == "1:1"
    assert h[("qdisc", "100:")].params["delay"] == 10000  # 10.0.0.3 sorts first
    assert h[("qdisc", "101:")].params["delay"] == 50000
    assert h[("qdisc", "101:")].params["loss"] == 1.0  # the rest of output still applies
    assert h[("qdisc", "10:")].params == {"loss": 1.0, "limit": 1000}
    filters = [o for o in ops if o.obj == "filter"]
    assert [f.params["keys"] for f in filters] == [
        ["0x0a000003/0xffffffff+16"],
        ["0x0a000014/0xffffffff+16"],
    ]
    assert [f.params["target"] for f in filters] == [0x10100, 0x10101]
    assert all(f.parent == "1:" and f.params["protocol"] == 0x0800 for f in filters)
    assert ops[-2:] == filters  # filters after the classes they point to


def test_peers_without_output_limits_use_an_unlimited_cap():
    ops = plan_direction("pdi1", None, "output", {"10.0.0.2": "5ms"})
    assert _by_handle(ops)[("class", "1:1")].params["rate"] == "100000000000bit"
    assert _by_handle(ops)[("qdisc", "20:")].kind == "pfifo"


def test_bad_peer_address():
    with pytest.raises(ValidationError) as err:
        plan_direction("pdi1", None, "output", {"10.0.0.300": "5ms"})
    assert err.value.field == "output.peers"
    with pytest.raises(ValidationError) as err:
        plan_direction("pdi1", None, "output", {"10.0.0.3": "5 eons"})
    assert err.value.field == "output.peers.10.0.0.3"


def test_redirect_sends_all_ingress_to_the_ifb():
    qdisc, flt = plan_redirect("pdv1a2b", "pdi1a2b")
    assert (qdisc.kind, qdisc.handle, qdisc.parent) == ("ingress", "ffff:", "ingress")
    assert flt.obj == "filter" and flt.parent == "ffff:" and flt.params["protocol"] == 3
    assert flt.params["keys"] == ["0x0/0x0+0"]
    assert flt.params["action"] == {
        "kind": "mirred",
        "direction": "egress",
        "action": "redirect",
        "dev": "pdi1a2b",
    }


def test_ifb_names_fit_ifnamsiz():
    assert ifb_name("pdv1a2b") == "pdi1a2b"
    assert ifb_name("pdtva", "pdti") == "pdtiva"
    long = ifb_name("pdv0123456789ab")
    assert len(long) <= 15 and long.startswith("pdi") and long != "pdv0123456789ab"
    assert ifb_name("pdv0123456789ab") == long  # deterministic: found again after a crash
    assert ifb_name("pdi1") != "pdi1"


FRESH = [TcObject("qdisc", "noqueue", "0:", "root")]


def _current(ops):
    return [TcObject(o.obj, o.kind, o.handle, o.parent) for o in ops if o.obj != "filter"]


def test_changes_on_a_fresh_device_add_everything():
    desired = plan_direction("pdv1", Traffic(bandwidth="10mbit"))
    ops = plan_changes(FRESH, desired)
    assert [o.op for o in ops] == ["add"] * 4
    assert [o.handle for o in ops] == [o.handle for o in desired]


def test_changes_in_place_keep_the_htb_root_and_swap_filters():
    before = plan_direction("pdi1", Traffic(bandwidth="10mbit"), "output", {"10.0.0.2": "5ms"})
    after = plan_direction("pdi1", Traffic(bandwidth="20mbit", latency="3ms"), "output")
    ops = plan_changes(_current(before), after)
    summary = [(o.op, o.obj, o.handle) for o in ops]
    assert summary == [
        ("del", "filter", ""),  # unhook the peer filters first
        ("del", "qdisc", "20:"),  # the leaf fifo becomes a netem
        ("del", "qdisc", "100:"),  # the peer's netem and class go
        ("del", "class", "1:100"),
        ("replace", "class", "1:1"),
        ("replace", "class", "1:2"),
        ("replace", "qdisc", "10:"),
    ]


def test_changes_with_another_root_start_over():
    before = plan_direction("pdv1", Traffic(latency="5ms"))
    after = plan_direction("pdv1", Traffic(bandwidth="5mbit"))
    ops = plan_changes(_current(before), after)
    assert ops[0] == TcOp("del", "qdisc", "netem", "pdv1", "10:", "root")
    assert [o.op for o in ops[1:]] == ["add"] * 4


def test_changes_to_nothing_delete_only_our_root():
    current = _current(plan_direction("pdv1", Traffic(bandwidth="5mbit")))
    assert plan_changes(current, []) == [TcOp("del", "qdisc", "htb", "", "1:", "root")]
    assert plan_changes(FRESH, []) == []
    assert plan_changes([], []) == []
