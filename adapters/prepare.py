"""Preparing reserved machines as pnodes: the one call every adapter's ``prepare`` makes.

The work itself — SSH in (through a gateway), root, checks, iproute2, install
pydistem, start ``distemd`` — is ``distem bootstrap``'s (``pydistem.bootstrap``);
this module adapts an adapter's machines and progress to it.
"""

from __future__ import annotations

from pathlib import Path

from pydistem.adapters.base import Progress
from pydistem.errors import Unsupported
from pydistem.model.machines import Machine


def prepare_machines(
    machines: list[Machine], key: Path | None, progress: Progress
) -> list[Machine]:
    """Bootstrap ``machines`` (idempotent); returns them ready to be initialised as pnodes.

    Raises Unsupported while this installation has no ``pydistem.bootstrap``."""
    try:
        from pydistem import bootstrap  # noqa: F401
    except ModuleNotFoundError:
        raise Unsupported(
            "preparing remote machines needs `distem bootstrap` (pydistem.bootstrap), "
            "which this installation does not have yet"
        ) from None
    raise Unsupported("pydistem.bootstrap has no machine-preparation API yet")
