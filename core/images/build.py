"""Build vnode root filesystem images (gzip tarballs) on this machine.

``build_busybox`` makes a ~1 MB rootfs from the host's static busybox in about a
second (tests, demos); ``build_debian`` runs debootstrap for a real Debian with
sshd. ``distem image build`` calls these two functions.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pydistem.errors import KernelError, Unsupported, ValidationError

#: Where build_busybox looks for a static busybox (Debian package busybox-static).
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

#: Applets linked when ``busybox --list-full`` is unavailable.
BASIC_APPLETS = (
    "bin/sh", "bin/ash", "bin/cat", "bin/cp", "bin/echo", "bin/hostname", "bin/kill",
    "bin/ln", "bin/ls", "bin/mkdir", "bin/mount", "bin/mv", "bin/ping", "bin/ps",
    "bin/rm", "bin/sleep", "bin/umount", "bin/ip", "sbin/ifconfig", "sbin/route",
    "usr/bin/nc", "usr/bin/env", "usr/bin/wget", "usr/bin/top", "usr/bin/tail",
)  # fmt: skip

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_PACKAGES = (
    "openssh-server",
    "iproute2",
    "iputils-ping",
    "procps",
    "netcat-openbsd",
    "python3-minimal",
)

_DIRS = (
    ("bin", 0o755), ("sbin", 0o755), ("usr", 0o755), ("usr/bin", 0o755),
    ("usr/sbin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777),
    ("run", 0o755), ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("var", 0o755),
    ("var/log", 0o755), ("home", 0o755), ("mnt", 0o755),
)  # fmt: skip

_FILES = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    ),
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/shadow": "root:*:19000:0:99999:7:::\n",
    "etc/hostname": "busybox\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n",
    "etc/os-release": 'NAME="pydistem busybox"\nID=busybox\n',
}


def _busybox_binary() -> Path:
    for cand in BUSYBOX_CANDIDATES:
        if os.access(cand, os.X_OK):
            return Path(cand)
    raise Unsupported("busybox not found (install the Debian package busybox-static)")


def _applets(busybox: Path) -> list[str]:
    """Applet paths relative to / (``bin/sh``, ``sbin/ifconfig``...)."""
    try:
        out = subprocess.run(
            [str(busybox), "--list-full"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return list(BASIC_APPLETS)
    applets = sorted({line.strip().lstrip("/") for line in out.splitlines() if line.strip()})
    return applets or list(BASIC_APPLETS)


def _info(name: str, kind: bytes, mode: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = int(mtime)
    return info


def build_busybox(dest: Path, busybox: Path | None = None) -> Path:
    """Write a tiny busybox root filesystem to ``dest`` (a ``.tar.gz``) and return it.

    The tarball holds the static busybox as ``/bin/busybox``, a symlink for every
    applet it provides (sh, ip, ping, ifconfig, hostname, nc, ps, kill...), a
    root-only ``/etc/passwd`` and ``/etc/group``, and empty ``/root``, ``/tmp``,
    ``/run``, ``/proc``, ``/sys`` and ``/dev`` (LXC fills /dev). Files are owned by
    root in the archive whoever builds it, so no privilege is needed.

    Idempotent: always rebuilds and atomically replaces ``dest``.
    Raises Unsupported when no busybox binary is found (package busybox-static).
    The binary must be static: the image has no libc.
    """
    dest = Path(dest)
    busybox = Path(busybox) if busybox else _busybox_binary()
    dest.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, mode in _DIRS:
                tar.addfile(_info(name, tarfile.DIRTYPE, mode, now))
            info = _info("bin/busybox", tarfile.REGTYPE, 0o755, now)
            info.size = busybox.stat().st_size
            with busybox.open("rb") as fh:
                tar.addfile(info, fh)
            for applet in _applets(busybox):
                if applet == "bin/busybox" or "/" not in applet:
                    continue
                parent = os.path.dirname(applet)
                if parent not in dict(_DIRS):
                    continue  # e.g. linuxrc at top level: not wanted
                link = _info(applet, tarfile.SYMTYPE, 0o777, now)
                link.linkname = "/bin/busybox"
                tar.addfile(link)
            run_link = _info("var/run", tarfile.SYMTYPE, 0o777, now)
            run_link.linkname = "../run"
            tar.addfile(run_link)
            for name, text in _FILES.items():
                data = text.encode()
                info = _info(name, tarfile.REGTYPE, 0o640 if "shadow" in name else 0o644, now)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def build_debian(
    dest: Path,
    suite: str = "bookworm",
    mirror: str = DEFAULT_MIRROR,
    packages: Iterable[str] = DEFAULT_PACKAGES,
    progress: Callable[[str], None] | None = None,
    force: bool = False,
) -> Path:
    """Build a Debian root filesystem with debootstrap (variant minbase) into ``dest``.

    ``packages`` are added with ``--include`` (by default openssh-server,
    iproute2, iputils-ping, procps, netcat-openbsd, python3-minimal). Each line
    debootstrap prints is passed to ``progress`` as it comes. Needs root and the
    mirror; takes a few minutes.

    Cached: when ``dest`` exists and was built with the same suite, mirror and
    packages (recorded in ``<dest>.json``), it is returned at once unless
    ``force``. The tarball appears atomically: a failed build leaves no ``dest``.

    Raises Unsupported (no debootstrap or not root), ValidationError (bad
    suite/package name), KernelError (debootstrap or tar failed; the message
    ends with debootstrap's last lines).
    """
    dest = Path(dest)
    pkgs = sorted(set(packages))
    for pkg in pkgs:
        if not pkg or not all(c.isalnum() or c in "+-.:" for c in pkg):
            raise ValidationError("packages", f"{pkg!r} is not a Debian package name")
    if not suite.replace("-", "").isalnum():
        raise ValidationError("suite", f"{suite!r} is not a Debian suite name")
    params = {"suite": suite, "mirror": mirror, "packages": pkgs, "variant": "minbase"}
    stamp = dest.with_name(dest.name + ".json")
    if not force and dest.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == params:
                return dest
        except (OSError, json.JSONDecodeError):
            pass
    if shutil.which("debootstrap") is None:
        raise Unsupported("debootstrap not found (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise Unsupported("build_debian needs root (debootstrap)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _line: None)
    work = Path(tempfile.mkdtemp(prefix=".debootstrap.", dir=dest.parent))
    target = work / "rootfs"
    tmp_tar = work / "image.tar.gz"
    try:
        cmd = ["debootstrap", "--variant=minbase"]
        if pkgs:
            cmd.append("--include=" + ",".join(pkgs))
        cmd += [suite, str(target), mirror]
        say("$ " + " ".join(cmd))
        tail: list[str] = []
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail = [*tail[-19:], line]
                say(line)
        if proc.returncode != 0:
            raise KernelError(
                "debootstrap", f"exit {proc.returncode}; last lines:\n" + "\n".join(tail)
            )
        _finish_debian(target, suite, mirror)
        say(f"packing {dest}")
        packed = subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-czf", str(tmp_tar),
             "-C", str(target), "."],
            capture_output=True, text=True,
        )  # fmt: skip
        if packed.returncode != 0:
            raise KernelError("tar", packed.stderr.strip() or f"exit {packed.returncode}")
        os.chmod(tmp_tar, 0o644)
        os.replace(tmp_tar, dest)
        stamp.write_text(json.dumps(params))
        say(f"image ready: {dest}")
        return dest
    finally:
        _rmtree_one_fs(work)


def _finish_debian(root: Path, suite: str, mirror: str) -> None:
    """Small fixes that make a debootstrapped tree a usable vnode image."""
    (root / "etc/apt/sources.list").write_text(f"deb {mirror} {suite} main\n")
    (root / "etc/hostname").write_text("debian\n")
    # an empty machine-id: each container would otherwise share the build's id
    (root / "etc/machine-id").write_text("")
    # host keys are generated in each vnode at first start (ssh-keygen -A in init)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (root / cache).glob("*"):
            if item.is_file():
                item.unlink()


def _rmtree_one_fs(path: Path) -> None:
    """Remove a debootstrap work tree; refuse to follow into a mount left behind."""
    if not path.exists():
        return
    with open("/proc/self/mounts") as fh:
        mounts = [line.split()[1] for line in fh]
    prefix = str(path.resolve()) + "/"
    for mnt in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", mnt], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)
