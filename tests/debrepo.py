"""Debian packages for tests: an "old" iproute2 and a local apt repository.

- :func:`download` fetches a real package of this machine's suites (``apt-get download``);
- :func:`aged` rebuilds such a package as an older version whose ``ip -V`` reports an
  old release (a wrapper around the real ``ip``, kept in the package): installed with
  ``dpkg -i`` on a host bed's host (in its private view), it makes a machine with an old
  iproute2, as dpkg and ``ip -V`` both see it;
- :func:`flat_repo` writes a flat, unsigned apt repository (``Packages`` and ``Release``)
  that ``deb [trusted=yes] file:DIR ./`` points apt-get at, offline.
"""

from __future__ import annotations

import email.utils
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

WRAPPER = """#!/bin/sh
# test package: the real ip, claiming to be iproute2 {release} when asked its version
case "$1" in -V|-Version|--Version) echo "ip utility, iproute2-{release}"; exit 0;; esac
exec /usr/lib/pydistem-test/ip "$@"
"""


def download(package: str, version: str, dest: Path) -> Path:
    """``apt-get download package=version`` into ``dest``; the .deb path."""
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(
            ["apt-get", "download", "-q", f"{package}={version}"],
            cwd=dest,
            check=True,
            capture_output=True,
        )
        found = sorted(dest.glob(f"{package}_*.deb"))
    return found[0]


def aged(real: Path, dest: Path, version: str, release: str) -> Path:
    """``real`` (an iproute2 .deb) rebuilt as ``version`` whose ``ip -V`` says
    ``release`` (e.g. ``ss140411``, iproute2 3.14)."""
    with tempfile.TemporaryDirectory(prefix="pd-deb-") as tmp:
        root = Path(tmp) / "pkg"
        subprocess.run(["dpkg-deb", "-R", str(real), str(root)], check=True)
        control = root / "DEBIAN" / "control"
        lines = [
            f"Version: {version}" if line.startswith("Version:") else line
            for line in control.read_text().splitlines()
        ]
        control.write_text("\n".join(lines) + "\n")
        (root / "DEBIAN" / "md5sums").unlink(missing_ok=True)
        keep = root / "usr" / "lib" / "pydistem-test"
        keep.mkdir(parents=True)
        ip = root / "bin" / "ip"
        shutil.move(ip, keep / "ip")
        ip.write_text(WRAPPER.format(release=release))
        ip.chmod(0o755)
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / f"iproute2_{version}_test.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-b", str(root), str(out)],
            check=True,
            capture_output=True,
        )
    return out


def _index(root: Path, pool: str, debs: Sequence[Path]) -> bytes:
    """A ``Packages`` file for ``debs``, copied into ``root/pool``."""
    (root / pool).mkdir(parents=True, exist_ok=True)
    stanzas = []
    for deb in debs:
        target = root / pool / deb.name
        shutil.copyfile(deb, target)
        data = target.read_bytes()
        control = subprocess.run(
            ["dpkg-deb", "-f", str(target)], check=True, capture_output=True, text=True
        ).stdout.strip()
        stanzas.append(
            f"{control}\nFilename: {pool}/{deb.name}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    return "\n".join(stanzas).encode()


def _release(fields: str, files: dict[str, bytes]) -> str:
    sums = "".join(f" {hashlib.sha256(d).hexdigest()} {len(d)} {n}\n" for n, d in files.items())
    date = email.utils.formatdate(usegmt=True)
    return f"Origin: pydistem-test\nLabel: pydistem-test\n{fields}Date: {date}\nSHA256:\n{sums}"


def flat_repo(directory: Path, debs: Sequence[Path]) -> Path:
    """A flat apt repository in ``directory`` holding ``debs`` (possibly none):
    ``deb [trusted=yes] file:DIRECTORY ./``."""
    directory.mkdir(parents=True, exist_ok=True)
    packages = _index(directory, ".", debs)
    (directory / "Packages").write_bytes(packages)
    (directory / "Release").write_text(_release("", {"Packages": packages}))
    return directory


def suite_repo(directory: Path, suite: str, debs: Sequence[Path], backports: bool) -> Path:
    """Suite ``suite`` (component main, amd64) of an apt repository in ``directory``:
    ``deb [trusted=yes] file:DIRECTORY SUITE main``. ``backports``: marked as Debian marks
    its backports (``NotAutomatic`` and ``ButAutomaticUpgrades``: apt installs from it
    only when asked, ``-t SUITE``)."""
    packages = _index(directory, f"pool/{suite}", debs)
    where = directory / "dists" / suite / "main" / "binary-amd64"
    where.mkdir(parents=True, exist_ok=True)
    (where / "Packages").write_bytes(packages)
    fields = f"Suite: {suite}\nCodename: {suite}\nComponents: main\nArchitectures: amd64\n"
    if backports:
        fields += "NotAutomatic: yes\nButAutomaticUpgrades: yes\n"
    release = _release(fields, {"main/binary-amd64/Packages": packages})
    (directory / "dists" / suite / "Release").write_text(release)
    return directory
