"""Address allocation inside a vnetwork: explicit addresses checked, the rest handed out.

Automatic addresses go from ``.1`` upward in creation order (as Distem), skipping
addresses already taken, the network and broadcast addresses, and ``reserved_tail``
addresses at the top of the range (Distem keeps the last P for its pnodes). ``avoid``
addresses (a vnetwork's gateway) are never handed out but may be claimed explicitly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydistem.errors import ValidationError

if TYPE_CHECKING:
    from pydistem.model.specs import VNetwork


class AddressPool:
    """Free/used addresses of one vnetwork. Not thread-safe: callers hold the state lock."""

    def __init__(
        self,
        cidr: str,
        used: set[str] | None = None,
        reserved_tail: int = 0,
        avoid: Iterable[str] = (),
    ) -> None:
        self.network = ipaddress.IPv4Network(cidr)
        self.used: set[int] = {int(ipaddress.IPv4Address(a)) for a in (used or ())}
        self.avoid: set[int] = {int(ipaddress.IPv4Address(a)) for a in avoid}
        first = int(self.network.network_address) + 1
        last = int(self.network.broadcast_address) - 1 - reserved_tail
        if self.network.prefixlen >= 31:
            first, last = int(self.network.network_address), int(self.network.broadcast_address)
        self._first, self._last = first, last
        self._cursor = first

    @property
    def capacity(self) -> int:
        return max(0, self._last - self._first + 1)

    def claim(self, field: str, address: str) -> str:
        """Mark an explicit ``address`` as used; ValidationError if outside or taken."""
        ip = ipaddress.IPv4Address(address)
        if ip not in self.network:
            raise ValidationError(field, f"{address} is outside vnetwork {self.network}")
        edges = (int(self.network.network_address), int(self.network.broadcast_address))
        if int(ip) in edges and self.network.prefixlen < 31:
            raise ValidationError(field, f"{address} is the network or broadcast address")
        if int(ip) in self.used:
            raise ValidationError(field, f"{address} is already used in {self.network}")
        self.used.add(int(ip))
        return str(ip)

    def allocate(self, field: str) -> str:
        """The lowest free address at or after the cursor (then wrapping once)."""
        for start, stop in ((self._cursor, self._last), (self._first, self._cursor - 1)):
            for value in range(start, stop + 1):
                if value not in self.used and value not in self.avoid:
                    self.used.add(value)
                    self._cursor = value + 1
                    return str(ipaddress.IPv4Address(value))
        raise ValidationError(field, f"vnetwork {self.network} has no free address left")

    def release(self, address: str) -> None:
        self.used.discard(int(ipaddress.IPv4Address(address)))


def pool_of(vnet: VNetwork, used: set[str] | None = None) -> AddressPool:
    """The address pool of ``vnet``: its gateway (when inside) is never handed out."""
    avoid = [vnet.gateway] if vnet.gateway is not None and vnet.gateway_inside else []
    return AddressPool(vnet.address, used, avoid=avoid)
