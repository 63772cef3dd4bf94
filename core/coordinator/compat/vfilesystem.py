"""Distem's ``/vnodes/:v/filesystem`` routes: create, update, info of a vnode's rootfs.

``shared``/``cow`` map to pydistem's overlay or private copy (see
:func:`.shapes.vfilesystem_desc`); ``disk_throttling`` is the vnode's disk limit
(:func:`pydistem.coordinator.limits.set_limits`), set live by ``PUT`` on a running vnode.
The image download (``.../filesystem/image``) is a gzip tarball of the running vnode's root.
"""

from __future__ import annotations

from typing import Any

from pydistem.coordinator import limits
from pydistem.coordinator.archive import archive_response
from pydistem.coordinator.compat import shapes, vresources
from pydistem.coordinator.compat.encoding import DistemError, not_found
from pydistem.coordinator.compat.router import Form, _desc, _get_vnode, _route, _vnode
from pydistem.coordinator.service import Coordinator
from pydistem.errors import PydistemError
from pydistem.model.limits import DiskThrottle, parse_disk

Disk = list[DiskThrottle] | limits._Keep | None


def _disk(desc: dict[str, Any], field: str = "desc") -> Disk:
    """The disk throttles a desc asks for, validated; ``KEEP`` when it has no
    ``disk_throttling`` key."""
    if "disk_throttling" not in desc:
        return limits.KEEP
    field = f"{field}.disk_throttling"
    return parse_disk(vresources.disk_from_desc(desc["disk_throttling"], field), field)


def _set(c: Coordinator, vnode: str, fs: dict[str, Any] | None, disk: Disk) -> None:
    """Set the vfilesystem (``fs`` None: unchanged), then the disk throttles; a refused
    throttle puts the previous vfilesystem back."""
    v = _get_vnode(c, vnode)
    old = v.vfilesystem.model_dump() if v.vfilesystem is not None else None
    if fs is not None:
        c.vnode_vfilesystem(vnode, fs)
    if disk is limits.KEEP:
        return
    try:
        limits.set_limits(c, vnode, v.cpu, v.memory, disk)
    except PydistemError:
        if fs is not None:
            c.vnode_vfilesystem(vnode, old)
        raise


def _fs(c: Coordinator, vnode: str) -> dict[str, Any]:
    fs = _vnode(c, _get_vnode(c, vnode))["vfilesystem"]
    if fs is None:
        raise not_found(f"vfilesystem of vnode {vnode}")
    return fs  # type: ignore[no-any-return]


@_route("GET", "/vnodes/{vnode}/filesystem")
def vfilesystem_info(c: Coordinator, form: Form, vnode: str) -> dict[str, Any]:
    return _fs(c, vnode)


@_route("POST", "/vnodes/{vnode}/filesystem")
def vfilesystem_create(c: Coordinator, form: Form, vnode: str) -> dict[str, Any]:
    if _get_vnode(c, vnode).vfilesystem is not None:
        raise DistemError(
            400, "AlreadyExistingResourceError", f"vfilesystem of vnode {vnode} exists"
        )
    desc = _desc(form)
    fs, disk = shapes.vfilesystem_desc(desc, "desc"), _disk(desc)
    _set(c, vnode, fs, disk)
    return _fs(c, vnode)


@_route("PUT", "/vnodes/{vnode}/filesystem")
def vfilesystem_update(c: Coordinator, form: Form, vnode: str) -> dict[str, Any]:
    _get_vnode(c, vnode)
    desc = _desc(form)
    if not desc and form.get("image"):  # python-distem sends the desc's fields bare
        desc = {k: val for k, val in form.items() if val is not None}
    update(c, vnode, desc, "desc")
    return _fs(c, vnode)


def update(c: Coordinator, vnode: str, desc: dict[str, Any], field: str) -> None:
    """Apply a vfilesystem desc to a vnode: image/shared/cow until it is built (kept
    when not mentioned), ``disk_throttling`` live at any time."""
    v = _get_vnode(c, vnode)
    if v.vfilesystem is not None:  # keep what the update does not mention
        desc = {"image": v.vfilesystem.image, "shared": v.vfilesystem.shared, **desc}
    fs, disk = shapes.vfilesystem_desc(desc, field), _disk(desc, field)
    current = v.vfilesystem.model_dump() if v.vfilesystem is not None else None
    changed = v.status == "INIT" or fs != current  # a built vnode: only its disk changes
    _set(c, vnode, fs if changed else None, disk)


@_route("GET", "/vnodes/{vnode}/filesystem/image")
def vfilesystem_image(c: Coordinator, form: Form, vnode: str) -> Any:
    """The vnode's root filesystem as a gzip tarball (Distem served it on the pnode)."""
    _get_vnode(c, vnode)
    return archive_response(c, vnode)
