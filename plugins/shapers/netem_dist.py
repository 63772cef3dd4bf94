"""netem delay distributions (``normal``, ``pareto``, ``paretonormal``) through pyroute2.

netem draws each packet's jitter from a table of 16-bit values that user space sends
with the qdisc (attribute ``TCA_NETEM_DELAY_DIST``); iproute2 ships the tables as text
files (``/usr/lib/<arch>/tc/normal.dist``...). pyroute2 encodes every other netem
option but declares that attribute without a type, so this module sends the one
message itself: the same netem options pyroute2 computes, plus the table as raw data.
Without a table netem's jitter is uniform in [delay - jitter, delay + jitter].
"""

from __future__ import annotations

import glob
import struct
from functools import cache
from pathlib import Path
from socket import AF_UNSPEC
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_NEWQDISC
from pyroute2.netlink.rtnl.tcmsg import sched_netem, tcmsg

from pydistem.errors import Unsupported

TABLE_DIRS = ("/usr/lib/*/tc", "/usr/lib/tc", "/usr/lib64/tc", "/usr/share/tc")
DISTRIBUTIONS = ("normal", "pareto", "paretonormal")
MAX_ENTRIES = 1 << 16  # the kernel's limit (netem.c)


@cache
def table(name: str) -> bytes:
    """The distribution table ``name`` as the kernel wants it: native-endian s16s."""
    for pattern in TABLE_DIRS:
        for path in sorted(glob.glob(f"{pattern}/{name}.dist")):
            values = [
                int(word)
                for line in Path(path).read_text().splitlines()
                if not line.lstrip().startswith("#")
                for word in line.split()
            ]
            if not 0 < len(values) <= MAX_ENTRIES:
                raise Unsupported(f"jitter distribution {name!r}: {path} has {len(values)} values")
            return struct.pack(f"={len(values)}h", *values)
    raise Unsupported(
        f"jitter distribution {name!r}: no {name}.dist table under {', '.join(TABLE_DIRS)}"
        " (Debian package iproute2 ships them)"
    )


# pyroute2 compiles an nla_map once per class and marks the class compiled with class
# attributes that a subclass inherits: both subclasses below reset them, or their parent's
# compiled map (the table declared 'none', i.e. sent empty; tcmsg's own get_options) is
# used whenever a plain netem qdisc was encoded first in this process.


class _options_with_table(sched_netem.options):
    _nlmsg_base__compiled_nla = False
    _nlmsg_base__t_nla_map = None
    _nlmsg_base__r_nla_map = None
    nla_map = tuple(
        ("TCA_NETEM_DELAY_DIST", "cdata") if name == "TCA_NETEM_DELAY_DIST" else (name, kind)
        for name, kind in sched_netem.options.nla_map
    )


class _tcmsg_with_table(tcmsg):
    _nlmsg_base__compiled_nla = False
    _nlmsg_base__t_nla_map = None
    _nlmsg_base__r_nla_map = None

    @staticmethod
    def get_options(self: tcmsg, *argv: Any, **kwarg: Any) -> type:
        return _options_with_table


def message(
    index: int, handle: int, parent: int, params: dict[str, Any], distribution: str
) -> tcmsg:
    """The RTM_NEWQDISC message for a netem qdisc with ``params`` (pyroute2's netem
    keywords) whose jitter follows ``distribution``."""
    options = sched_netem.get_parameters(params)
    options["attrs"].append(["TCA_NETEM_DELAY_DIST", table(distribution)])
    msg = _tcmsg_with_table()
    msg["family"] = AF_UNSPEC
    msg["index"] = index
    msg["handle"] = handle
    msg["parent"] = parent
    msg["attrs"] = [["TCA_KIND", "netem"], ["TCA_OPTIONS", options]]
    return msg


def replace(
    ipr: IPRoute, index: int, handle: int, parent: int, params: dict[str, Any], distribution: str
) -> None:
    """``tc qdisc replace ... netem delay D J distribution <name>`` (raises NetlinkError)."""
    msg = message(index, handle, parent, params, distribution)
    msg["header"]["type"] = RTM_NEWQDISC
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    ipr.nlm_request_batch([msg])
