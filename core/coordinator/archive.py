"""The root filesystem of a running vnode as a gzip tarball, over HTTP: Distem's
``vfilesystem_image`` (``GET /vnodes/:v/filesystem/image``) and the native
``GET /api/v1/vnodes/{name}/rootfs``, both through :meth:`Coordinator.vnode_rootfs_archive`.

The tarball is made by the vnode's pnode agent, copied to a private temporary folder
of the coordinator, sent, then deleted.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from pydistem.coordinator.service import Coordinator

MEDIA_TYPE = "application/gzip"


def archive_response(c: Coordinator, vnode: str) -> FileResponse:
    """A response streaming ``<vnode>.tgz``; the temporary copy goes once it is sent.
    Raises what :meth:`Coordinator.vnode_rootfs_archive` raises (nothing left behind)."""
    folder = Path(tempfile.mkdtemp(prefix="pydistem-rootfs-"))
    dest = folder / f"{vnode}.tgz"
    try:
        c.vnode_rootfs_archive(vnode, dest)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        dest,
        media_type=MEDIA_TYPE,
        filename=dest.name,
        background=BackgroundTask(shutil.rmtree, folder, True),
    )
