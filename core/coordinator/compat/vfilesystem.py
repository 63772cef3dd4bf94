"""Distem's ``/vnodes/:v/filesystem`` routes: create, update, info of a vnode's rootfs.

``shared``/``cow`` map to pydistem's overlay or private copy (see
:func:`.shapes.vfilesystem_desc`); ``disk_throttling`` answers 501. The image
download (``.../filesystem/image``) is a gzip tarball of the running vnode's root.
"""

from __future__ import annotations

from typing import Any

from pydistem.coordinator.archive import archive_response
from pydistem.coordinator.compat import shapes
from pydistem.coordinator.compat.encoding import DistemError, not_found
from pydistem.coordinator.compat.router import Form, _desc, _get_vnode, _route, _vnode
from pydistem.coordinator.service import Coordinator


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
    c.vnode_vfilesystem(vnode, shapes.vfilesystem_desc(_desc(form), "desc"))
    return _fs(c, vnode)


@_route("PUT", "/vnodes/{vnode}/filesystem")
def vfilesystem_update(c: Coordinator, form: Form, vnode: str) -> dict[str, Any]:
    v = _get_vnode(c, vnode)
    desc = _desc(form)
    if not desc and form.get("image"):  # python-distem sends the desc's fields bare
        desc = {k: val for k, val in form.items() if val is not None}
    if v.vfilesystem is not None:  # keep what the update does not mention
        desc = {"image": v.vfilesystem.image, "shared": v.vfilesystem.shared, **desc}
    c.vnode_vfilesystem(vnode, shapes.vfilesystem_desc(desc, "desc"))
    return _fs(c, vnode)


@_route("GET", "/vnodes/{vnode}/filesystem/image")
def vfilesystem_image(c: Coordinator, form: Form, vnode: str) -> Any:
    """The vnode's root filesystem as a gzip tarball (Distem served it on the pnode)."""
    _get_vnode(c, vnode)
    return archive_response(c, vnode)
