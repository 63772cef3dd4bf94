"""The root filesystem of a running vnode as a gzip tarball, over HTTP: Distem's
``vfilesystem_image`` (``GET /vnodes/:v/filesystem/image``) and the native
``GET /api/v1/vnodes/{name}/rootfs``, both through :meth:`Coordinator.vnode_rootfs_archive`.

The tarball is made by the vnode's pnode agent, copied to a private temporary folder
of the coordinator, sent, then deleted.
"""

from __future__ import annotations

from fastapi.responses import FileResponse

from pydistem.coordinator.service import Coordinator
from pydistem.http_files import temporary_file_response

MEDIA_TYPE = "application/gzip"


def archive_response(c: Coordinator, vnode: str) -> FileResponse:
    """A response streaming ``<vnode>.tgz``; the temporary copy goes once it is sent.
    Raises what :meth:`Coordinator.vnode_rootfs_archive` raises (nothing left behind)."""
    return temporary_file_response(
        lambda dest: c.vnode_rootfs_archive(vnode, dest), f"{vnode}.tgz", MEDIA_TYPE
    )
