"""Distem 1.x wire compatibility: Distem's REST paths, form encoding, shapes and errors.

Served by ``distemd -d --distem-compat`` (off by default). Every route translates to
the :class:`~pydistem.coordinator.service.Coordinator`'s methods; nothing is reimplemented.
``router`` holds the core routes; each other module registers one family of routes on it.
"""

# registers Distem's /events/* and /eventmanager routes on the same router
from pydistem.coordinator.compat import events as _events  # noqa: F401
from pydistem.coordinator.compat import limits as _limits  # noqa: F401 - registers vcpu/vmem
from pydistem.coordinator.compat import pnode_admin, tables, vfilesystem, vplatform
from pydistem.coordinator.compat import vroutes as _vroutes  # noqa: F401  (registers routes)
from pydistem.coordinator.compat.router import router

__all__ = ["pnode_admin", "router", "tables", "vfilesystem", "vplatform"]
