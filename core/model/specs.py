"""The typed platform model: what a platform is made of, validated once at the edge.

PNode, VNetwork, VNode, VIface, VFilesystem and the per-direction Traffic limits.
Everything behind the edges (REST, CLI, platform file) trusts these objects.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pydistem.errors import ValidationError
from pydistem.model import names, units
from pydistem.model.images import check_image_url
from pydistem.model.limits import CpuLimit, DiskThrottle, MemoryLimit, check_disk

VNodeStatus = Literal["INIT", "CONFIGURING", "RUNNING", "DOWN", "FROZEN", "FAILED"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Traffic(_Model):
    """Limits on one direction of a viface. Values are kept as the user wrote them."""

    bandwidth: str | None = None
    latency: str | None = None
    jitter: str | None = None
    jitter_distribution: Literal["normal", "pareto", "paretonormal", "uniform"] | None = None
    loss: str | None = None
    duplication: str | None = None
    corruption: str | None = None
    reordering: str | None = None
    queue: str | None = None

    @field_validator("bandwidth", mode="before")
    @classmethod
    def _rate(cls, v: Any) -> Any:
        if v is not None:
            units.parse_rate("bandwidth", v)
            return str(v)
        return v

    @field_validator("latency", "jitter", mode="before")
    @classmethod
    def _time(cls, v: Any, info: Any) -> Any:
        if v is not None:
            units.parse_duration(info.field_name, v)
            return str(v)
        return v

    @field_validator("loss", "duplication", "corruption", "reordering", mode="before")
    @classmethod
    def _pct(cls, v: Any, info: Any) -> Any:
        if v is not None:
            units.parse_percent(info.field_name, v)
            return str(v)
        return v

    @field_validator("queue", mode="before")
    @classmethod
    def _queue(cls, v: Any) -> Any:
        if v is not None:
            units.parse_size("queue", v)
            return str(v)
        return v

    def is_empty(self) -> bool:
        return all(v is None for v in self.model_dump().values())


class VIface(_Model):
    """A virtual interface of a vnode, attached to one vnetwork."""

    name: str
    vnetwork: str | None = None
    address: str | None = None  # an IPv4 address; allocated when not given
    macaddress: str | None = None
    default: bool = False
    input: Traffic | None = None
    output: Traffic | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return names.check_name("name", v, names.VIFACE_MAX)

    @field_validator("vnetwork")
    @classmethod
    def _vnet(cls, v: str | None) -> str | None:
        return None if v is None else names.check_name("vnetwork", v, names.VNETWORK_MAX)

    @field_validator("address", mode="before")
    @classmethod
    def _addr(cls, v: Any) -> Any:
        if v is None or v == "":
            return None
        text = str(v)
        try:
            iface = ipaddress.IPv4Interface(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IPv4 address") from exc
        return str(iface.ip)

    @field_validator("macaddress")
    @classmethod
    def _mac(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}", v):
            raise ValueError(f"{v!r} is not a MAC address like 02:00:00:00:00:01")
        if int(v[:2], 16) & 1:
            raise ValueError(f"{v!r} is a multicast MAC address")
        return v.lower()


class VFilesystem(_Model):
    """The root filesystem of a vnode: an image URL, shared (overlay) or copied."""

    image: str
    shared: bool = True

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        return check_image_url("image", v)


class SshKey(_Model):
    """SSH keys installed in the vnode's root account (Distem's sshprivkey/sshpubkey)."""

    public: str | None = None
    private: str | None = None


class VNode(_Model):
    """A virtual node: a container (runtime ``lxc``) or a bare namespace (``netns``)."""

    name: str
    runtime: str = "lxc"
    host: str | None = None  # pnode id; None (or "auto") lets the coordinator place it
    vfilesystem: VFilesystem | None = None
    vifaces: list[VIface] = Field(default_factory=list)
    ssh_key: SshKey | None = None
    cpu: CpuLimit | None = None
    memory: MemoryLimit | None = None
    disk: list[DiskThrottle] | None = None
    #: ``GATEWAY``: the vnode forwards IPv4 between its vifaces (Distem's vnode mode)
    mode: Literal["NORMAL", "GATEWAY"] = "NORMAL"
    status: VNodeStatus = "INIT"

    @field_validator("disk", mode="before")
    @classmethod
    def _disk(cls, v: Any) -> Any:
        """``disk: {read: 10MiB}`` stands for a list of one throttle; ``[]`` for none."""
        if v in ([], {}):
            return None
        return [v] if isinstance(v, dict | DiskThrottle) else v

    @field_validator("disk")
    @classmethod
    def _disk_devices(cls, v: list[DiskThrottle] | None) -> list[DiskThrottle] | None:
        return None if v is None else check_disk(v)

    @model_validator(mode="before")
    @classmethod
    def _image_shorthand(cls, data: Any) -> Any:
        """``image: URL`` (and ``shared:``) at vnode level stand for ``vfilesystem``."""
        if isinstance(data, dict) and "image" in data:
            data = dict(data)
            if "vfilesystem" in data:
                raise ValidationError("image", "give either image or vfilesystem, not both")
            data["vfilesystem"] = {"image": data.pop("image"), "shared": data.pop("shared", True)}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return names.check_name("name", v, names.VNODE_MAX)

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, v: str) -> str:
        return names.check_name("runtime", v, 32)

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, v: Any) -> Any:
        return None if v in (None, "", "auto") else v

    @model_validator(mode="after")
    def _unique_vifaces(self) -> VNode:
        seen: set[str] = set()
        for i, vif in enumerate(self.vifaces):
            if vif.name in seen:
                raise ValidationError(f"vifaces[{i}].name", f"{vif.name!r} appears twice")
            seen.add(vif.name)
        return self

    def default_viface(self) -> VIface | None:
        """The viface flagged ``default``, else the first attached one."""
        attached = [v for v in self.vifaces if v.address]
        for vif in attached:
            if vif.default:
                return vif
        return attached[0] if attached else None


NetworkType = Literal["auto", "bridge", "vxlan"]
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
VXLAN_PORT = 4789  # IANA


class VNetwork(_Model):
    """A virtual network: an IPv4 subnet, a bridge on each pnode that hosts members.

    ``bridge`` without ``root_interface`` stays on one pnode; with it, the bridge of
    every pnode enslaves that interface (Distem's classical mode). ``vxlan`` joins the
    bridges of all pnodes through a VXLAN tunnel (``vni``, UDP ``vxlan_port``). ``auto``
    is resolved by the coordinator when the vnetwork is created (docs/networks.md).
    """

    name: str
    address: str
    network_type: NetworkType = "auto"
    root_interface: str | None = None
    vni: int | None = Field(default=None, ge=1, le=(1 << 24) - 1)
    vxlan_port: int = Field(default=VXLAN_PORT, ge=1, le=65535)
    mtu: int | None = Field(default=None, ge=576, le=65535)
    #: the router of the vnodes whose default viface is here: their default route goes
    #: through it (``onlink`` when it lies outside ``address``), docs/networks.md
    gateway: str | None = None
    #: why ``auto`` became what it is (set by the coordinator)
    reason: str | None = None

    @field_validator("root_interface")
    @classmethod
    def _iface(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        return names.check_name("root_interface", v, names.VIFACE_MAX)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return names.check_name("name", v, names.VNETWORK_MAX)

    @field_validator("address", mode="before")
    @classmethod
    def _cidr(cls, v: Any) -> str:
        text = str(v)
        try:
            net = ipaddress.IPv4Network(text, strict=False)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IPv4 CIDR like 10.144.0.0/22") from exc
        if "/" not in text:
            raise ValueError(f"{text!r} has no prefix length (write e.g. {text}/24)")
        if net.prefixlen > 30:
            raise ValueError(f"{text!r}: /{net.prefixlen} leaves no room for vnodes (/30 at most)")
        if net.prefixlen == 0:
            raise ValueError(
                f"{text!r} is every address, not a vnetwork (a vnetwork's `gateway` gives "
                "its vnodes a default route)"
            )
        return str(net)

    @field_validator("gateway", mode="before")
    @classmethod
    def _gateway(cls, v: Any) -> str | None:
        if v is None or v == "":
            return None
        try:
            return str(ipaddress.IPv4Address(str(v)))
        except ValueError:
            raise ValueError(f"{v!r} is not an IPv4 address like 10.159.255.254") from None

    @model_validator(mode="after")
    def _gateway_in_network(self) -> VNetwork:
        if self.gateway is None or not self.gateway_inside:
            return self
        net = self.network
        if ipaddress.IPv4Address(self.gateway) in (net.network_address, net.broadcast_address):
            raise ValidationError(
                "gateway", f"{self.gateway} is the network or broadcast address of {net}"
            )
        return self

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.address)

    @property
    def spans_pnodes(self) -> bool:
        """Whether vnodes on different pnodes can share this vnetwork."""
        return self.network_type == "vxlan" or self.root_interface is not None

    @property
    def gateway_inside(self) -> bool:
        """Whether ``gateway`` lies in the vnetwork's prefix (else: routed ``onlink``)."""
        return self.gateway is not None and ipaddress.IPv4Address(self.gateway) in self.network

    def viface_mtu(self) -> int | None:
        """The MTU to give vifaces on this vnetwork (None: the kernel's default)."""
        if self.mtu is not None:
            return self.mtu
        return 1500 - VXLAN_OVERHEAD if self.network_type == "vxlan" else None


class VRoute(_Model):
    """A route in vnetwork ``source`` towards vnetwork ``destination`` through
    ``gateway``, an address in ``source`` of a vnode attached to both (or routing on)."""

    source: str
    destination: str
    gateway: str

    @field_validator("source", "destination")
    @classmethod
    def _vnet(cls, v: str, info: Any) -> str:
        return names.check_name(info.field_name, v, names.VNETWORK_MAX)

    @field_validator("gateway", mode="before")
    @classmethod
    def _gw(cls, v: Any) -> str:
        try:
            return str(ipaddress.IPv4Address(str(v).split("/")[0]))
        except ValueError:
            raise ValueError(f"{v!r} is not an IPv4 address") from None


class PNode(_Model):
    """A physical node that runs a pnode agent. ``id`` is its canonical key."""

    id: str
    address: str
    port: int = 4568
    hostname: str | None = None
    status: Literal["INIT", "RUNNING", "FAILED", "DOWN"] = "INIT"
    cores: int = 0
    cpu_mhz: float = 0
    memory_mb: int = 0
    runtimes: list[str] = Field(default_factory=list)
    features: dict[str, bool] = Field(default_factory=dict)
    cpu_algorithm: Literal["hogs", "gov"] = "hogs"  # Distem's pnode CPU algorithm, recorded
