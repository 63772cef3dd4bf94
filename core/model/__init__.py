"""The typed platform model: specs, names, units, addressing and platform files."""

from pydistem.model.specs import (
    PNode,
    SshKey,
    Traffic,
    VFilesystem,
    VIface,
    VNetwork,
    VNode,
)

__all__ = ["PNode", "SshKey", "Traffic", "VFilesystem", "VIface", "VNetwork", "VNode"]
