"""The per-pnode cache of extracted images: each tarball is unpacked once.

``ImageCache.ensure(url, journal)`` returns ``<state_dir>/images/<key>/rootfs``,
extracting it on first use; vnodes then share it (overlay) or copy it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from pydistem.agent.journal import Journal
from pydistem.errors import KernelError, ValidationError
from pydistem.model.images import image_path

FIELD = "vfilesystem.image"


def image_key(path: Path) -> str:
    """The cache key of an image file: sha256 of (real path, size, mtime, inode).

    Hashing the content of a 300 MB image would cost about a second on every
    agent start; the stat tuple changes whenever the file is rebuilt or replaced
    (``build_*`` replace the file atomically, so the inode changes too).
    """
    real = path.resolve()
    st = real.stat()
    ident = f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


class ImageCache:
    """Extracted images under ``<state_dir>/images``. Thread-safe.

    Extraction uses GNU ``tar`` rather than Python's ``tarfile``: a root
    filesystem needs setuid bits, owners, device nodes, hard links and file
    capabilities (xattrs: ping's cap_net_raw) kept, which tarfile's safe
    ``data``/``tar`` filters strip, and tar is several times faster on images with
    thousands of files. GNU tar already refuses ``..`` members, strips leading
    ``/`` and defers symlinks that point outside the tree, so a hostile archive
    cannot write outside the temporary directory.
    """

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "images"
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def ensure(self, url: str, journal: Journal) -> Path:
        """The extracted rootfs of the image at ``url`` (a ``file://`` URL).

        Extracts into a temporary folder and renames it into place, once per pnode
        even when many threads ask at the same time (one lock per image). The
        folder ``<state_dir>/images/<key>`` is journaled as kind ``dir`` (id: its
        absolute path) before it is created. Idempotent.

        Raises ValidationError("vfilesystem.image", ...) when the file does not
        exist or is not a readable archive, KernelError when tar fails otherwise.
        """
        path = Path(image_path(url))
        if not path.is_file():
            raise ValidationError(FIELD, f"{path} does not exist on pnode {os.uname().nodename}")
        key = image_key(path)
        entry_dir = self.root / key
        rootfs = entry_dir / "rootfs"
        if rootfs.is_dir():
            return rootfs
        with self._lock(key):
            if rootfs.is_dir():
                return rootfs
            journal.add("dir", str(entry_dir), image=str(path))
            entry_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix="rootfs.", suffix=".tmp", dir=entry_dir))
            try:
                os.chmod(tmp, 0o755)
                proc = subprocess.run(
                    ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                     "-xpf", str(path), "-C", str(tmp)],
                    capture_output=True, text=True,
                )  # fmt: skip
                if proc.returncode != 0:
                    err = proc.stderr.strip()[-500:] or f"exit {proc.returncode}"
                    if "not look like a tar archive" in err or "not in gzip format" in err:
                        raise ValidationError(FIELD, f"{path} is not a tar archive: {err}")
                    raise KernelError("tar -x " + str(path), err)
                (entry_dir / "source").write_text(str(path) + "\n")
                os.rename(tmp, rootfs)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return rootfs

    def remove_all(self, journal: Journal) -> None:
        """Delete every extracted image this cache journaled. Idempotent."""
        for entry in journal.live("dir"):
            if Path(entry.id).parent == self.root:
                shutil.rmtree(entry.id, ignore_errors=True)
                journal.remove("dir", entry.id)
