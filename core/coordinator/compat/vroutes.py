"""Distem's vroute routes: ``POST /vnetworks/:vnet/routes`` (``vroute_create``) and
``POST /vnetworks/routes/complete`` (``vroute_complete``), on the one Coordinator.

Registered on the compat router by importing this module (see ``compat/__init__``).
"""

from __future__ import annotations

from typing import Any

from pydistem.coordinator.compat import shapes
from pydistem.coordinator.compat.encoding import invalid
from pydistem.coordinator.compat.router import Form, _route, _vnetwork
from pydistem.coordinator.service import Coordinator


@_route("POST", "/vnetworks/routes/complete")
def vroute_complete(c: Coordinator, form: Form) -> dict[str, Any]:
    """Every missing route; Distem answers the vnetworks hash, not the routes."""
    c.vroute_complete()
    return {n: _vnetwork(c, v) for n, v in list(c.vnets.items())}


@_route("POST", "/vnetworks/{vnet}/routes")
def vroute_create(c: Coordinator, form: Form, vnet: str) -> dict[str, Any]:
    """``destnetwork`` (a vnetwork name), ``gatewaynode`` (a vnode name or one of its IPs)."""
    dest, gateway = form.get("destnetwork"), form.get("gatewaynode")
    if not dest:
        raise invalid("destnetwork: the destination vnetwork is required")
    if not gateway:
        raise invalid("gatewaynode: a vnode name or address is required")
    route = c.vroute_create(vnet, dest, gateway)
    return shapes.vroute(route, list(c.vroutes.values()))
