"""build_busybox writes a usable rootfs tarball; ImageCache and build_debian refuse bad input."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest

from pydistem.errors import ValidationError
from pydistem.images import build_busybox, build_debian

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
needs_busybox = pytest.mark.skipif(not os.access(BUSYBOX, os.X_OK), reason="no busybox")


@needs_busybox
def test_busybox_tarball_content(tmp_path: Path) -> None:
    dest = build_busybox(tmp_path / "bb.tar.gz")
    assert dest == tmp_path / "bb.tar.gz"
    with tarfile.open(dest) as tar:
        members = {m.name: m for m in tar.getmembers()}
        links = {Path(n).name: m for n, m in members.items() if m.issym()}
        for applet in ("sh", "hostname", "cat", "sleep", "ping", "ip", "ifconfig", "nc", "ps"):
            assert links[applet].linkname == "/bin/busybox", applet
            assert links[applet].name.split("/")[0] in ("bin", "sbin", "usr"), applet
        assert members["bin/busybox"].isfile()
        assert members["bin/busybox"].mode & 0o111
        assert members["bin/busybox"].size == os.stat(BUSYBOX).st_size
        for folder in ("root", "tmp", "run", "proc", "sys", "dev", "etc"):
            assert members[folder].isdir(), folder
        assert members["tmp"].mode == 0o1777
        assert members["root"].mode == 0o700
        assert all(m.uid == 0 and m.gid == 0 for m in members.values())
        passwd = tar.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
        assert passwd.startswith("root:x:0:0:")
        assert tar.extractfile("etc/group").read().startswith(b"root:x:0:")  # type: ignore[union-attr]
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left"


@needs_busybox
def test_busybox_rebuild_replaces(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "bb.tar.gz"
    build_busybox(dest)
    first = dest.stat().st_ino
    build_busybox(dest)
    assert dest.stat().st_ino != first  # atomically replaced
    assert sorted(p.name for p in dest.parent.iterdir()) == ["bb.tar.gz"]


def test_debian_refuses_bad_package_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        build_debian(tmp_path / "d.tar.gz", packages=["openssh-server", "x; rm -rf /"])
    assert err.value.field == "packages"
    assert not list(tmp_path.iterdir())


def test_debian_cached_build_returns_at_once(tmp_path: Path) -> None:
    dest = tmp_path / "d.tar.gz"
    dest.write_bytes(b"pretend")
    params = (
        '{"suite": "bookworm", "mirror": "http://m/debian", "packages": ["iproute2"], '
        '"variant": "minbase"}'
    )
    (tmp_path / "d.tar.gz.json").write_text(params)
    lines: list[str] = []
    got = build_debian(dest, mirror="http://m/debian", packages=["iproute2"], progress=lines.append)
    assert got == dest and lines == []
