"""Preparing machines as pnodes over SSH (``distem bootstrap``) and leaving nothing on
them afterwards (``distem quit``).

    from pydistem.bootstrap import BootstrapOptions, prepare, teardown
    report = prepare(read_machine_file(path), BootstrapOptions(strict=True))
    report.url, report.token           # how to reach the coordinator
    [(m.id, m.state, m.reason) for m in report.machines]

Modules: ``ssh`` (paramiko sessions, jump hosts), ``root`` (root access through sudo),
``checks`` (kernel features, ``ip -V``: pure), ``install`` (iproute2, LXC, pydistem),
``daemons`` (distemd start/stop, token), ``run`` (the phases, in parallel), ``report``.
"""

from __future__ import annotations

from pydistem.bootstrap.options import BootstrapOptions
from pydistem.bootstrap.report import PHASES, BootstrapReport, MachineReport
from pydistem.bootstrap.run import TEARDOWN_PHASES, TeardownReport, prepare, teardown

__all__ = [
    "PHASES",
    "TEARDOWN_PHASES",
    "BootstrapOptions",
    "BootstrapReport",
    "MachineReport",
    "TeardownReport",
    "prepare",
    "teardown",
]
