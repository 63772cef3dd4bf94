"""Which pnode runs each vnode: an explicit ``host``, or spread by free capacity.

Pure: it reads the pnodes, vnetworks and vnodes already placed, and sets ``host``
on the planned vnodes or raises ValidationError naming the vnode's field. The
vnetworks constrain it:

- a local ``bridge`` vnetwork (no ``root_interface``) exists on one pnode only: all
  its vnodes go where the first one is;
- a classic vnetwork (``root_interface``) avoids pnodes whose uplink drops frames for
  foreign MACs (``faults``: pnode -> explanation, from the probe);
- ``vxlan`` vnetworks go anywhere.

Among the pnodes left, ``auto`` picks the one with the fewest vnodes per core.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from pydistem.errors import ValidationError
from pydistem.model.specs import PNode, VNetwork, VNode


def place(
    planned: list[VNode],
    placed: Iterable[VNode],
    pnodes: dict[str, PNode],
    vnets: dict[str, VNetwork],
    faults: dict[str, dict[str, str]],
    field_of: Callable[[int], str],
) -> None:
    """Set ``host`` on every planned vnode (explicit hosts must already be pnode ids).

    ``faults`` maps a classic vnetwork's root interface to {pnode: why it cannot}.
    """
    load: dict[str, int] = defaultdict(int)
    pinned: dict[str, str] = {}  # local vnetwork -> its pnode
    for v in placed:
        if v.host:
            load[v.host] += 1
            for vif in v.vifaces:
                net = vnets.get(vif.vnetwork or "")
                if net is not None and not net.spans_pnodes:
                    pinned.setdefault(net.name, v.host)
    running = [p for p in pnodes.values() if p.status == "RUNNING"] or list(pnodes.values())

    def allowed(v: VNode) -> tuple[set[str], dict[str, str]]:
        """The pnodes ``v`` may run on, and why each other pnode may not."""
        ok = {p.id for p in running}
        why: dict[str, str] = {}
        for vif in v.vifaces:
            net = vnets.get(vif.vnetwork or "")
            if net is None:
                continue
            if not net.spans_pnodes and net.name in pinned:
                home = pinned[net.name]
                for pid in ok - {home}:
                    why.setdefault(
                        pid,
                        f"vnetwork {net.name} is a local bridge on pnode {home} (give it "
                        "network_type vxlan or auto, or a root_interface, to span pnodes)",
                    )
                ok &= {home}
            elif net.network_type == "bridge" and net.root_interface:
                for pid, fault in faults.get(net.root_interface, {}).items():
                    if pid in ok:
                        why.setdefault(pid, fault)
                        ok.discard(pid)
        return ok, why

    # explicit hosts first (they pin local vnetworks), then the others
    order = sorted(range(len(planned)), key=lambda k: planned[k].host is None)
    pnode_of = {p.id: p for p in running}
    for i in order:
        v = planned[i]
        ok, why = allowed(v)
        field = f"{field_of(i)}.host".lstrip(".")
        if v.host is not None:
            if v.host not in ok:
                reason = why.get(v.host, f"pnode {v.host} is not running")
                raise ValidationError(field, f"vnode {v.name} cannot run there: {reason}")
        else:
            if not ok:
                reasons = sorted(set(why.values())) or ["no pnode is running"]
                reason = "; ".join(reasons)
                raise ValidationError(field, f"no pnode can run vnode {v.name}: {reason}")
            v.host = min(ok, key=lambda pid: (load[pid] / max(1, pnode_of[pid].cores), pid))
        load[v.host] += 1
        for vif in v.vifaces:
            net = vnets.get(vif.vnetwork or "")
            if net is not None and not net.spans_pnodes:
                pinned.setdefault(net.name, v.host)
