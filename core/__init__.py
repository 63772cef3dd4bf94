"""pydistem: a distributed-systems emulator in the line of Distem.

``pydistem.client()`` opens a client on a running coordinator; see docs/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pydistem.client import Client


def client(*args: Any, **kwargs: Any) -> Client:
    """A context-managed :class:`pydistem.client.Client` (see its docstring for arguments)."""
    from pydistem.client import Client

    return Client(*args, **kwargs)


__all__ = ["__version__", "client"]
