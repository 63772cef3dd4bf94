"""Fit a platform file to what a testbed reserved, before it is built (pure).

Two decisions the engine makes from the testbed, not from the coordinator:

- **addresses**: a vnetwork whose ``address`` is ``testbed`` (or ``testbed:N``, or that
  has no ``address`` while the testbed reserves subnets) gets a routable subnet the
  reservation holds (Grid'5000's g5k-subnets), in file order, and, unless the file sets
  one, the testbed's router for those subnets as its ``gateway`` (the vnodes' default
  route; on Grid'5000 the site gateway g5k-subnets prints);
- **network types**: on a testbed whose machines share no layer-2 segment
  (``capabilities.layer2`` false), an ``auto`` vnetwork that could span machines becomes
  ``vxlan`` at once: classic mode is never tried (no uplink probe).

``fit`` works on the raw document (as read from YAML) and returns a validated Platform
plus one line per decision for the user. See docs/adapters.md.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydistem.adapters.base import Capabilities
from pydistem.errors import ValidationError
from pydistem.model.platform_file import TESTBED_ADDRESS, Platform, platform_from_dict

#: stand-in subnets for validating a file before anything is reserved (RFC 2544 range)
_PLACEHOLDERS = ipaddress.IPv4Network("198.18.0.0/15")


@dataclass
class Fitted:
    """The platform as it will be built, and what was decided (one line each)."""

    platform: Platform
    decisions: list[str] = field(default_factory=list)
    #: vnetwork name -> the reserved subnet it got
    subnets: dict[str, str] = field(default_factory=dict)


def wants_testbed_address(item: Any) -> bool:
    """Whether a raw vnetwork item takes its address from the reservation."""
    if not isinstance(item, dict):
        return False
    addr = item.get("address")
    return addr is None or (isinstance(addr, str) and bool(TESTBED_ADDRESS.match(addr.strip())))


def placeholders(prefixes: Sequence[int]) -> list[ipaddress.IPv4Network]:
    """Distinct subnets of the given prefix lengths, to validate a file before reserving."""
    out: list[ipaddress.IPv4Network] = []
    start = int(_PLACEHOLDERS.network_address)
    for plen in prefixes:
        size = 1 << (32 - plen)
        start = (start + size - 1) // size * size  # aligned
        out.append(ipaddress.IPv4Network((start, plen)))
        start += size
    return out


def _assign(
    doc: dict[str, Any],
    testbed: str,
    routable: bool,
    subnets: Sequence[ipaddress.IPv4Network],
    gateway: str | None = None,
) -> dict[str, tuple[str, str | None, bool]]:
    """Fill the addresses of the vnetworks that ask for the testbed's (in place), and
    their ``gateway`` with ``gateway`` when they set none; returns vnetwork name ->
    (subnet, its gateway, whether the file set it). ValidationError names the field."""
    items = doc.get("vnetworks") or []
    if not isinstance(items, list):
        return {}  # platform_from_dict reports it
    asking = [(i, it) for i, it in enumerate(items) if wants_testbed_address(it)]
    explicit: dict[int, int] = {}  # subnet index -> vnetwork index
    for i, it in asking:
        m = TESTBED_ADDRESS.match(str(it.get("address") or "testbed").strip())
        assert m is not None
        if m.group(1):
            n = int(m.group(1))
            if n in explicit:
                raise ValidationError(
                    f"vnetworks[{i}].address",
                    f"testbed:{n} is already the address of vnetworks[{explicit[n]}]",
                )
            explicit[n] = i
    taken = set(explicit)
    out: dict[str, tuple[str, str | None, bool]] = {}
    for i, it in asking:
        where = f"vnetworks[{i}].address"
        given = it.get("address")
        if not subnets:
            if given is None:
                raise ValidationError(
                    where,
                    "is required: an IPv4 CIDR like 10.144.0.0/22"
                    + (
                        ", or `testbed` once the testbed section reserves subnets"
                        if routable
                        else ""
                    ),
                )
            raise ValidationError(
                where,
                (
                    f"{given!r} takes a subnet the testbed reserved, but this `testbed:` "
                    "section reserves none (g5k: `subnets: slash_22=1`)"
                )
                if routable
                else f"{given!r}: testbed {testbed!r} reserves no routable subnet; "
                "give an IPv4 CIDR",
            )
        m = TESTBED_ADDRESS.match(str(given or "testbed").strip())
        assert m is not None
        if m.group(1):
            n = int(m.group(1))
            if n > len(subnets):
                raise ValidationError(
                    where,
                    f"testbed:{n} but the reservation holds {len(subnets)} subnet(s) "
                    f"({', '.join(map(str, subnets))})",
                )
        else:
            free = [k for k in range(1, len(subnets) + 1) if k not in taken]
            if not free:
                raise ValidationError(
                    where,
                    f"every reserved subnet already has a vnetwork ({len(subnets)} reserved: "
                    f"{', '.join(map(str, subnets))}); reserve more or give an IPv4 CIDR",
                )
            n = free[0]
        taken.add(n)
        it["address"] = str(subnets[n - 1])
        own = it.get("gateway") not in (None, "")
        if not own and gateway is not None:
            it["gateway"] = gateway
        name = it.get("name")
        out[str(name) if name is not None else f"vnetworks[{i}]"] = (
            str(subnets[n - 1]),
            str(it["gateway"]) if it.get("gateway") not in (None, "") else None,
            own,
        )
    return out


def _address_decision(testbed: str, name: str, cidr: str, gw: str | None, own: bool) -> str:
    line = f"vnetwork {name}: {cidr} (a routable subnet reserved on {testbed})"
    if gw is None:
        return line
    where = "the file's gateway" if own else f"the gateway {testbed} routes it through"
    return f"{line}, default route via {gw} ({where})"


def fit(
    doc: Any,
    *,
    testbed: str,
    capabilities: Capabilities,
    subnets: Sequence[ipaddress.IPv4Network | str] = (),
    gateway: str | None = None,
    machines: int = 1,
    source: str = "platform",
) -> Fitted:
    """The platform ``doc`` fitted to a reservation of ``testbed``.

    ``subnets``: the routable subnets the reservation holds, in order; ``gateway``: the
    router of those subnets (None: unknown), given to the vnetworks filled from them
    that set no ``gateway``; ``machines``: how many pnodes it gives. Raises
    ValidationError (naming the field) for an address the reservation cannot give, or
    anything else wrong in the file. Pure, does not modify ``doc``."""
    if not isinstance(doc, dict):
        return Fitted(platform_from_dict(doc, source))
    work = copy.deepcopy(doc)
    nets = [ipaddress.IPv4Network(str(s)) for s in subnets]
    given = _assign(work, testbed, capabilities.routable_subnets, nets, gateway)
    platform = platform_from_dict(work, source)
    decisions = [_address_decision(testbed, n, *g) for n, g in given.items()]
    if not capabilities.layer2:
        for vnet in platform.vnetworks:
            if vnet.network_type != "auto":
                continue
            if vnet.root_interface is None and machines <= 1:
                continue  # one machine, no uplink: a local bridge (the coordinator's choice)
            vnet.network_type = "vxlan"
            vnet.reason = f"auto: testbed {testbed} gives no layer 2 between its machines" + (
                f" ({vnet.root_interface} not bridged)" if vnet.root_interface else ""
            )
            vnet.root_interface = None
            decisions.append(f"vnetwork {vnet.name}: vxlan ({vnet.reason})")
    return Fitted(platform, decisions, {n: cidr for n, (cidr, _, _) in given.items()})
