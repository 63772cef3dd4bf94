"""``distem image build``: vnode root filesystem images, via :mod:`pydistem.images.build`."""

from __future__ import annotations

from pathlib import Path

from pydistem.cli import output
from pydistem.images import build

DEFAULT_DIR = Path("/var/lib/pydistem/images")


def default_path(kind: str) -> Path:
    return DEFAULT_DIR / f"{kind}.tar.gz"


def build_image(
    kind: str,
    dest: Path | None,
    if_missing: bool = False,
    suite: str = "bookworm",
    mirror: str | None = None,
    force: bool = False,
) -> Path:
    """Build a ``busybox`` (seconds) or ``debian`` (debootstrap, minutes) image at ``dest``.

    With ``if_missing`` an existing file is kept as it is. Raises Unsupported (missing
    busybox-static/debootstrap), KernelError (debootstrap failed).
    """
    dest = Path(dest or default_path(kind))
    if if_missing and dest.exists():
        output.done(f"image {dest} already there")
        return dest
    if kind == "busybox":
        with output.spinner(f"building the busybox image {dest}"):
            path = build.build_busybox(dest)
    else:
        with output.spinner(f"building the Debian {suite} image {dest} (debootstrap)") as _:
            path = build.build_debian(
                dest,
                suite=suite,
                mirror=mirror or build.DEFAULT_MIRROR,
                progress=lambda line: output.note(line[:120]),
                force=force,
            )
    size = path.stat().st_size / 1e6
    output.done(f"image {path} ({size:.1f} MB); use it as file://{path}")
    return path
