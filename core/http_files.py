"""HTTP responses that send a file made for one request, then delete it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask


def temporary_file_response(
    build: Callable[[Path], None],
    name: str,
    media_type: str,
    *,
    folder: Path | None = None,
    prefix: str = "pydistem-",
    attachment: bool = True,
) -> FileResponse:
    """``build(path)`` writes the file ``name`` in a private temporary folder (under
    ``folder``, default the system's), sent as the response and removed once it is sent.
    What ``build`` raises propagates, with the folder already removed."""
    where = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    dest = where / name
    try:
        build(dest)
    except BaseException:
        shutil.rmtree(where, ignore_errors=True)
        raise
    return FileResponse(
        dest,
        media_type=media_type,
        filename=name if attachment else None,
        background=BackgroundTask(shutil.rmtree, where, True),
    )
