"""Which block device a disk throttle applies to, as the kernel names it (``major:minor``).

A vnode's rootfs lives on the filesystem of its folder; the device is that filesystem's
disk. The kernel throttles whole disks only (a partition's rule is refused with ENODEV),
so a partition resolves to its disk. Loop devices and device-mapper volumes are disks.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydistem.errors import ValidationError

SYS_DEV_BLOCK = Path("/sys/dev/block")


def whole_disk(major: int, minor: int, sysfs: Path = SYS_DEV_BLOCK) -> str:
    """``major:minor`` of the disk holding block device ``major:minor`` (itself if it is
    a disk)."""
    node = sysfs / f"{major}:{minor}"
    if (node / "partition").exists():
        dev = (node.resolve().parent / "dev").read_text().strip()
        return dev
    return f"{major}:{minor}"


def device_of_path(path: Path) -> tuple[int, int]:
    """(major, minor) of the filesystem holding ``path`` (its nearest existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    st = os.stat(p)
    return os.major(st.st_dev), os.minor(st.st_dev)


def resolve(device: str | None, folder: Path, field: str, sysfs: Path = SYS_DEV_BLOCK) -> str:
    """The ``major:minor`` a throttle of ``device`` (None: the disk holding ``folder``)
    is written for. Raises ValidationError(field) for a path that is not a block device
    or a folder on no block device (tmpfs, overlay of the host...)."""
    if device is None:
        major, minor = device_of_path(folder)
        if not (sysfs / f"{major}:{minor}").exists():
            raise ValidationError(
                field,
                f"{folder} is on device {major}:{minor}, which is no block device: "
                "name the device to throttle",
            )
        return whole_disk(major, minor, sysfs)
    try:
        st = os.stat(device)
    except OSError as exc:
        raise ValidationError(field, f"{device}: {exc.strerror} on this pnode") from None
    if not stat.S_ISBLK(st.st_mode):
        raise ValidationError(field, f"{device} is not a block device")
    return whole_disk(os.major(st.st_rdev), os.minor(st.st_rdev), sysfs)
