"""Which pnode cores a vnode gets: the least used ones, so that vnodes overlap only when
the pnode runs out of free cores. Pure: the agent passes what other vnodes hold."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def pick_cores(wanted: int, cores: Iterable[int], taken: Iterable[list[int]]) -> list[int]:
    """``wanted`` cores out of ``cores``, the least used by ``taken`` first (ties: lowest
    number). Overlap happens only when fewer than ``wanted`` cores are free."""
    available = sorted(cores)
    if wanted > len(available):
        raise ValueError(f"{wanted} cores asked, {len(available)} online")
    use = Counter(c for held in taken for c in held)
    return sorted(sorted(available, key=lambda c: (use[c], c))[:wanted])
