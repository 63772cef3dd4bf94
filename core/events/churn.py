"""Generated churn: a reproducible schedule of failures and recoveries from a seed.

Each vnode draws from its own random stream, seeded by ``(seed, vnode name)``: the
same seed gives the same schedule on any machine and Python, and adding a vnode to
the list does not change the schedule of the others.
"""

from __future__ import annotations

import random

from pydistem.events.model import Churn, Event

FAIL = {"stop": "stop", "freeze": "freeze"}
RECOVER = {"stop": "start", "freeze": "unfreeze"}


def vnode_stream(seed: int, vnode: str) -> random.Random:
    """The random stream of one vnode (string seeding is stable across runs)."""
    return random.Random(f"pydistem-churn:{seed}:{vnode}")


def churn_events(spec: Churn, source: str = "churn") -> list[Event]:
    """The failures and recoveries ``spec`` describes, sorted by time then vnode.

    Up times are exponential with mean ``1/rate``, down times exponential with
    mean ``downtime``; times are rounded to the millisecond. A failure before
    ``until`` always gets its recovery, even after ``until``.
    """
    out: list[Event] = []
    for vnode in spec.vnodes:
        rng = vnode_stream(spec.seed, vnode)
        t = spec.start
        while True:
            t += rng.expovariate(spec.rate)
            if t >= spec.until:
                break
            out.append(Event(at=round(t, 3), action=FAIL[spec.mode], vnode=vnode, source=source))
            t += rng.expovariate(1.0 / spec.downtime)
            out.append(Event(at=round(t, 3), action=RECOVER[spec.mode], vnode=vnode, source=source))
    out.sort(key=lambda e: (e.at, e.vnode))
    return out
