"""Distem 1.x wire compatibility: Distem's REST paths, form encoding, shapes and errors.

Served by ``distemd -d --distem-compat`` (off by default). Every route translates to
the :class:`~pydistem.coordinator.service.Coordinator`'s methods; nothing is reimplemented.
"""

from pydistem.coordinator.compat.router import router

__all__ = ["router"]
