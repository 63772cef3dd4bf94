"""The ``lxc`` runtime: each vnode is an LXC system container driven by the lxc-* tools.

We write each container's config ourselves (no templates) under ``<state_dir>/lxc``;
the container joins the network namespace the agent built, its rootfs is an overlay
on the shared extracted image (``shared: true``) or a private copy, and its init is
a small shell script of ours that starts sshd when the image has one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydistem.agent.journal import Entry
from pydistem.errors import Conflict, KernelError, Unsupported, ValidationError
from pydistem.images.cache import ImageCache
from pydistem.model.images import image_path
from pydistem.model.specs import VNode
from pydistem.plugins.runtimes.base import ExecResult, Runtime, VNodeContext

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
TOOLS = ("lxc-start", "lxc-stop", "lxc-attach", "lxc-info", "lxc-freeze", "lxc-unfreeze")

#: Inside the vnode: our init, its log, and the status line it writes about sshd.
INIT_LOG = "/run/pydistem-init.log"
SSHD_STATUS = "/run/pydistem-sshd.status"

INIT_SCRIPT = f"""#!/bin/sh
# pydistem vnode init (written by the lxc runtime): start sshd if the image
# has one, then wait forever. Not systemd: a vnode runs what the user starts.
export PATH={PATH}
mkdir -p /run
exec >>{INIT_LOG} 2>&1 </dev/null
echo "pydistem init: started"
status() {{ echo "$1" > {SSHD_STATUS}.tmp && mv {SSHD_STATUS}.tmp {SSHD_STATUS}; echo "sshd: $1"; }}
if [ -x /usr/sbin/sshd ]; then
    mkdir -p /run/sshd && chmod 0755 /run/sshd
    if ! ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1; then
        ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key \\
            || status "failed: ssh-keygen could not create a host key"
    fi
    keys=""
    for k in /etc/ssh/ssh_host_*_key; do [ -f "$k" ] && keys="$keys -h $k"; done
    if [ -z "$keys" ]; then
        status "failed: no host key in /etc/ssh"
    elif err=$(/usr/sbin/sshd -t $keys 2>&1); then
        if /usr/sbin/sshd $keys -E /var/log/sshd.log; then
            status "running"
        else
            status "failed: sshd exited with $? (see /var/log/sshd.log)"
        fi
    else
        status "failed: sshd -t: $err"
    fi
else
    status "none: the image has no /usr/sbin/sshd"
fi
trap 'exit 0' TERM INT
while :; do sleep 2147483647 & wait $!; done
"""
#: named by its content: written once into a shared image (an overlay's lower folder,
#: which must not change under running vnodes); another version adds a file beside it
INIT_PATH = f"/.pydistem/init-{hashlib.sha256(INIT_SCRIPT.encode()).hexdigest()[:12]}"


def _run(argv: list[str], timeout: float | None = 30) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise Unsupported(f"{argv[0]} not found: install the lxc package") from exc
    except subprocess.TimeoutExpired as exc:
        raise KernelError(argv[0], f"timed out after {timeout}s", errno.ETIMEDOUT) from exc


# --- cgroups LXC makes (lxc.payload.NAME / lxc.monitor.NAME) -------------------------


def _cgroup_mounts() -> list[Path]:
    """Mount points of every cgroup hierarchy (v1 controllers and the v2 one)."""
    mounts = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) > 2 and parts[2] in ("cgroup", "cgroup2"):
                mounts.append(Path(parts[1].replace("\\040", " ")))
    return mounts


def _own_cgroup_paths() -> set[str]:
    paths = {""}
    with open("/proc/self/cgroup") as fh:
        for line in fh:
            paths.add(line.rstrip("\n").split(":", 2)[2].strip("/"))
    return paths


def lxc_cgroups(name: str) -> list[Path]:
    """Existing cgroup folders LXC made for container ``name``, deepest first.

    LXC creates them under the cgroup of the process that starts it, or at the
    root of a hierarchy after pivoting; we look in both places.
    """
    found: list[Path] = []
    bases = _own_cgroup_paths()
    for mnt in _cgroup_mounts():
        for base in bases:
            for prefix in ("lxc.payload.", "lxc.monitor."):
                cg = mnt / base / (prefix + name) if base else mnt / (prefix + name)
                if cg.is_dir():
                    found.extend(sorted((p for p in cg.rglob("*") if p.is_dir()), reverse=True))
                    found.append(cg)
    return found


def payload_cgroups(name: str) -> list[Path]:
    """The cgroup folders of container ``name``'s processes (``lxc.payload.<name>``, one
    per hierarchy; nested groups the container makes are inside them)."""
    top = "lxc.payload." + name
    return [cg for cg in lxc_cgroups(name) if cg.name == top]


def remove_lxc_cgroups(name: str) -> None:
    """rmdir the (empty) cgroups LXC left for ``name``. Idempotent.

    Raises KernelError when one still holds processes.
    """
    for cg in lxc_cgroups(name):
        try:
            cg.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise KernelError(f"rmdir {cg}", exc.strerror or str(exc), exc.errno) from exc


def _stop_container(name: str, lxcpath: str, state: str | None = None) -> None:
    """Kill the container (thawing it first if frozen) and wait until it is gone.

    ``state`` is the lxc-info state when the caller already knows it.
    """
    if not Path(lxcpath, name, "config").exists():
        return
    if state is None:
        state = _run(["lxc-info", "-n", name, "-P", lxcpath, "-s", "-H"]).stdout.strip()
    if state in ("", "STOPPED"):
        return
    if state in ("FROZEN", "FREEZING"):
        _run(["lxc-unfreeze", "-n", name, "-P", lxcpath])
    res = _run(["lxc-stop", "-n", name, "-P", lxcpath, "-k"])
    if res.returncode not in (0, 2):  # 2: was not running
        raise KernelError(f"lxc-stop {name}", res.stderr.strip() or f"exit {res.returncode}")


#: what rootfs archives keep as empty folders (pseudo filesystems of the running vnode)
PSEUDO = ("./proc", "./sys", "./dev")


def _add_tree(tar: tarfile.TarFile, path: str, arcname: str) -> None:
    """Add ``path`` and what it holds under ``arcname``, without following symlinks,
    skipping what vanishes meanwhile (a live vnode) and sockets, not descending into
    :data:`PSEUDO`."""
    try:
        info = tar.gettarinfo(path, arcname)
    except FileNotFoundError:
        return
    if info is None:  # a socket
        return
    if info.isreg():
        try:
            with open(path, "rb") as data:
                tar.addfile(info, data)
        except FileNotFoundError:
            return
    else:
        tar.addfile(info)
    if info.isdir() and arcname not in PSEUDO:
        try:
            children = sorted(os.listdir(path))
        except FileNotFoundError:
            return
        for child in children:
            _add_tree(tar, os.path.join(path, child), f"{arcname}/{child}")


def clean_lxc(entry: Entry) -> None:
    """Cleaner of kind ``lxc`` (id: container name; data: lxcpath, log)."""
    lxcpath = entry.data["lxcpath"]
    _stop_container(entry.id, lxcpath)
    remove_lxc_cgroups(entry.id)
    shutil.rmtree(Path(lxcpath, entry.id), ignore_errors=True)
    if entry.data.get("log"):
        Path(entry.data["log"]).unlink(missing_ok=True)


def clean_dir(entry: Entry) -> None:
    """Cleaner of kind ``dir`` (id: absolute path of a folder to delete)."""
    path = Path(entry.id)
    if path.is_absolute() and path != Path("/"):
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            raise KernelError(f"rmtree {path}", "could not remove (a mount inside?)")


# --- rootfs preparation --------------------------------------------------------------


def _write_in_root(root: Path, rel: str, data: str, mode: int, lower: Path | None = None) -> None:
    """Write ``/rel`` of a container rootfs from the host, never through a symlink.

    ``root`` is the folder we write to (the overlay upper dir, or a private
    copy); ``lower`` the read-only image under an overlay, whose folder modes the
    upper folders copy so the merged view keeps the image's permissions.
    """
    parts = rel.strip("/").split("/")
    cur = root
    for i, part in enumerate(parts[:-1]):
        cur = cur / part
        if cur.is_symlink():
            raise ValidationError(
                "vfilesystem.image", f"/{'/'.join(parts[: i + 1])} is a symlink in the image"
            )
        if not cur.exists():
            ref = lower / "/".join(parts[: i + 1]) if lower else None
            if ref is not None and ref.is_symlink():
                raise ValidationError(
                    "vfilesystem.image", f"/{'/'.join(parts[: i + 1])} is a symlink in the image"
                )
            cur.mkdir()
            if ref is not None and ref.is_dir():
                st = ref.stat()
                os.chown(cur, st.st_uid, st.st_gid)
                os.chmod(cur, st.st_mode & 0o7777)
    target = cur / parts[-1]
    if target.is_symlink() or target.is_dir():
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    tmp = target.with_name(f".{target.name}.pydistem")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data.encode())
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, target)


class LxcRuntime(Runtime):
    """vnodes as LXC containers. One instance per agent; methods are thread-safe.

    Journal kinds: ``lxc`` (id: container name = netns name; data: lxcpath, log, vnode)
    and ``dir`` (id: absolute folder path: the extracted image, the overlay folder
    or the private rootfs copy).
    """

    name = "lxc"
    needs_image = True

    def __init__(self, state_dir: Path, journal) -> None:  # type: ignore[no-untyped-def]
        super().__init__(Path(state_dir), journal)
        self.lxcpath = self.state_dir / "lxc"
        self.images = ImageCache(self.state_dir)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    # --- checks ------------------------------------------------------------------

    def check_host(self) -> None:
        """Raise Unsupported naming the first missing lxc tool."""
        for tool in TOOLS:
            if shutil.which(tool) is None:
                raise Unsupported(
                    f"{tool} not found: install the lxc package (apt-get install lxc)"
                )

    def validate(self, vnode: VNode) -> None:
        """Raise ValidationError when the vnode's image file is not on this pnode. A vnode
        without an image passes (the agent refuses to start it, see ``needs_image``)."""
        if vnode.vfilesystem is None:
            return
        path = image_path(vnode.vfilesystem.image)
        if not os.path.isfile(path):
            raise ValidationError(
                "vfilesystem.image", f"{path} does not exist on pnode {os.uname().nodename}"
            )

    # --- paths ---------------------------------------------------------------------

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _cname(self, ctx: VNodeContext) -> str:
        """The container name: the basename of the vnode's network namespace, which
        the agent makes unique on the machine (``pd<tag>-<vnode>``), so that two
        agents on one host never share LXC's ``lxc.payload.<name>`` cgroups."""
        name = Path(ctx.netns_path).name
        if not _CNAME.match(name):
            raise ValidationError(
                "netns_path", f"{ctx.netns_path!r}: not usable as a container name"
            )
        return name

    def _pidfile(self, ctx: VNodeContext) -> Path:
        return self.lxcpath / self._cname(ctx) / "monitor.pid"

    def _argv(self, tool: str, ctx: VNodeContext) -> list[str]:
        return [tool, "-n", self._cname(ctx), "-P", str(self.lxcpath)]

    # --- state without subprocesses ------------------------------------------------

    def _monitor_cgroups(self, ctx: VNodeContext) -> list[str] | None:
        """The /proc/<monitor>/cgroup lines of a running container, else None."""
        try:
            pid = int(self._pidfile(ctx).read_text())
            with open(f"/proc/{pid}/cgroup") as fh:
                lines = fh.read().splitlines()
        except (OSError, ValueError):
            return None
        mine = re.compile(re.escape("lxc.monitor." + self._cname(ctx)) + r"(-\d+)?")
        return lines if any(mine.fullmatch(line.rsplit("/", 1)[-1]) for line in lines) else None

    def _freezer_state(self, ctx: VNodeContext) -> str | None:
        lines = self._monitor_cgroups(ctx)
        if lines is None:
            return None
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if "freezer" in controllers.split(","):
                payload = path.replace("/lxc.monitor.", "/lxc.payload.")
                try:
                    return (
                        Path(f"/sys/fs/cgroup/freezer{payload}/freezer.state").read_text().strip()
                    )
                except OSError:
                    return None
        return None

    def is_running(self, ctx: VNodeContext) -> bool:
        """True while the container's monitor process lives (frozen counts as running)."""
        return self._monitor_cgroups(ctx) is not None

    def init_pid(self, ctx: VNodeContext) -> int | None:
        """The host pid of the container's init, or None when not running."""
        res = _run([*self._argv("lxc-info", ctx), "-p", "-H"])
        out = res.stdout.strip()
        return int(out) if res.returncode == 0 and out.isdigit() else None

    # --- lifecycle -----------------------------------------------------------------

    def _prepare_rootfs(self, ctx: VNodeContext) -> tuple[str, Path, Path | None]:
        """Return (lxc.rootfs.path, folder to write our files to, lower image)."""
        vfs = ctx.vnode.vfilesystem
        if vfs is None:
            raise ValidationError("vfilesystem.image", "the lxc runtime needs an image")
        image = self.images.ensure(vfs.image, self.journal)
        workdir = ctx.workdir.resolve()
        if vfs.shared:
            overlay = workdir / "overlay"
            upper = overlay / "upper"
            for p in (image, upper):
                if ":" in str(p) or "," in str(p):
                    raise Unsupported(f"overlay rootfs: path {p} must not contain ':' or ','")
            if not upper.is_dir():
                self.journal.add("dir", str(overlay))
                (overlay / "work").mkdir(parents=True, exist_ok=True)
                upper.mkdir(exist_ok=True)
                os.chmod(upper, os.stat(image).st_mode & 0o7777)
            return f"overlay:{image}:{upper}", upper, image
        rootfs = workdir / "rootfs"
        if not rootfs.is_dir():
            self.journal.add("dir", str(rootfs))
            tmp = workdir / "rootfs.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            res = _run(["cp", "-a", "--reflink=auto", str(image), str(tmp)], timeout=None)
            if res.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise KernelError(f"cp {image}", res.stderr.strip())
            os.rename(tmp, rootfs)
        return f"dir:{rootfs}", rootfs, None

    def _write_files(self, ctx: VNodeContext, root: Path, lower: Path | None) -> None:
        vnode = ctx.vnode
        if lower is None:
            _write_in_root(root, INIT_PATH, INIT_SCRIPT, 0o755)
        elif not (lower / INIT_PATH.lstrip("/")).is_file():
            # once per image, into the shared lower folder: no file per vnode
            with self._lock(f"init:{lower}"):
                if not (lower / INIT_PATH.lstrip("/")).is_file():
                    _write_in_root(lower, INIT_PATH, INIT_SCRIPT, 0o755)
        _write_in_root(root, "/etc/hosts", ctx.etc_hosts, 0o644, lower)
        _write_in_root(root, "/etc/hostname", vnode.name + "\n", 0o644, lower)
        key = vnode.ssh_key
        if key is not None and (key.public or key.private):
            if key.public:
                pub = key.public.strip() + "\n"
                _write_in_root(root, "/root/.ssh/authorized_keys", pub, 0o600, lower)
                _write_in_root(root, "/root/.ssh/id_rsa.pub", pub, 0o644, lower)
            if key.private:
                priv = key.private.strip() + "\n"
                _write_in_root(root, "/root/.ssh/id_rsa", priv, 0o600, lower)
            os.chmod(root / "root/.ssh", 0o700)

    def _config(self, ctx: VNodeContext, rootfs_path: str) -> str:
        for value in (rootfs_path, ctx.netns_path, str(ctx.workdir)):
            if "\n" in value:
                raise ValidationError("vnode", f"{value!r}: a path with a newline")
        log = ctx.workdir.resolve() / "lxc.log"
        lines = {
            "lxc.uts.name": ctx.vnode.name,
            "lxc.rootfs.path": rootfs_path,
            "lxc.namespace.share.net": ctx.netns_path,
            "lxc.init.cmd": f"/bin/sh {INIT_PATH}",
            "lxc.mount.auto": "proc:mixed sys:mixed cgroup:mixed",
            # /run on tmpfs, as on any booted Linux: runtime files (the init's log
            # and sshd status, sshd's pid) never reach the vnode's disk layer
            "lxc.mount.entry": "tmpfs run tmpfs rw,nosuid,nodev,mode=0755,create=dir 0 0",
            "lxc.autodev": "1",
            "lxc.apparmor.profile": "unconfined",
            "lxc.console.path": "none",
            "lxc.tty.max": "0",
            "lxc.pty.max": "16",
            "lxc.log.file": str(log),
            "lxc.log.level": "WARN",
        }
        return "# written by pydistem (lxc runtime)\n" + "".join(
            f"{k} = {v}\n" for k, v in lines.items()
        )

    def start(self, ctx: VNodeContext) -> None:
        """Prepare the rootfs (once) and start the container (~20 ms once prepared).

        Idempotent: a running vnode is left alone. sshd starts in the background:
        call :meth:`wait_sshd` to know whether it came up. Raises KernelError with
        the tail of ``<workdir>/lxc.log`` when lxc-start fails.
        """
        name = self._cname(ctx)
        with self._lock(name):
            if self.is_running(ctx):
                return
            if not Path(ctx.netns_path).exists():
                raise KernelError(
                    f"lxc-start {name}", f"network namespace {ctx.netns_path} missing"
                )
            ctx.workdir.mkdir(parents=True, exist_ok=True)
            rootfs_path, root, lower = self._prepare_rootfs(ctx)
            self._write_files(ctx, root, lower)
            cdir = self.lxcpath / name
            log = ctx.workdir.resolve() / "lxc.log"
            self.journal.add(
                "lxc", name, lxcpath=str(self.lxcpath), log=str(log), vnode=ctx.vnode.name
            )
            cdir.mkdir(parents=True, exist_ok=True)
            (cdir / "config").write_text(self._config(ctx, rootfs_path))
            pidfile = self._pidfile(ctx)
            pidfile.unlink(missing_ok=True)
            res = _run([*self._argv("lxc-start", ctx), "-d", "-p", str(pidfile)])
            if res.returncode != 0:
                tail = ""
                with contextlib.suppress(OSError):
                    tail = "\n".join(log.read_text().splitlines()[-8:])
                raise KernelError(
                    f"lxc-start {name}",
                    (res.stderr.strip() + "\n" + tail).strip() or f"exit {res.returncode}",
                )

    def stop(self, ctx: VNodeContext) -> None:
        """Kill every process of the vnode (lxc-stop -k), keep its files. Idempotent."""
        name = self._cname(ctx)
        with self._lock(name):
            if self.is_running(ctx):
                state = "FROZEN" if self.is_frozen(ctx) else "RUNNING"
                _stop_container(name, str(self.lxcpath), state)
            else:  # no live monitor: only a crash mid-start can leave a container
                _stop_container(name, str(self.lxcpath))
            self._pidfile(ctx).unlink(missing_ok=True)
            remove_lxc_cgroups(name)

    def remove(self, ctx: VNodeContext) -> None:
        """Stop the vnode and delete its container folder, rootfs copy or overlay. Idempotent.

        The extracted image stays in the cache (other vnodes share it).
        """
        name = self._cname(ctx)
        self.stop(ctx)
        with self._lock(name):
            for entry in self.journal.live("lxc"):
                if entry.id == name:
                    clean_lxc(entry)
            self.journal.remove("lxc", name)
            workdir = ctx.workdir.resolve()
            for path in (workdir / "overlay", workdir / "rootfs"):
                clean_dir(Entry("dir", str(path)))
                self.journal.remove("dir", str(path))
            shutil.rmtree(workdir / "rootfs.tmp", ignore_errors=True)
            (workdir / "lxc.log").unlink(missing_ok=True)

    def rootfs_archive(self, ctx: VNodeContext, dest: Path) -> None:
        """A gzip tarball of the vnode's root as its init sees it (``/proc/<pid>/root``:
        the overlay merged, the vnode's own changes in), written to ``dest``. Running or
        frozen vnodes only (Conflict otherwise)."""
        pid = self.init_pid(ctx)
        if pid is None:
            raise Conflict(
                f"vnode {ctx.vnode.name} is not running: start it to archive its filesystem"
            )
        root = f"/proc/{pid}/root/"  # the slash: the directory, not the magic link
        try:
            with tarfile.open(dest, "w:gz", compresslevel=6) as tar:
                _add_tree(tar, root, ".")
        except OSError as exc:
            dest.unlink(missing_ok=True)
            what = f"archive the root filesystem of {ctx.vnode.name}"
            raise KernelError(what, str(exc)) from None

    def freeze(self, ctx: VNodeContext) -> None:
        """Suspend the vnode's processes (freezer cgroup). Raises Conflict if not running."""
        if not self.is_running(ctx):
            raise Conflict(f"vnode {ctx.vnode.name} is not running")
        res = _run(self._argv("lxc-freeze", ctx))
        if res.returncode != 0:
            raise KernelError(f"lxc-freeze {ctx.vnode.name}", res.stderr.strip())

    def unfreeze(self, ctx: VNodeContext) -> None:
        """Resume a frozen vnode. Idempotent on a running one; Conflict if stopped."""
        if not self.is_running(ctx):
            raise Conflict(f"vnode {ctx.vnode.name} is not running")
        res = _run(self._argv("lxc-unfreeze", ctx))
        if res.returncode != 0:
            raise KernelError(f"lxc-unfreeze {ctx.vnode.name}", res.stderr.strip())

    def cgroup_dirs(self, ctx: VNodeContext) -> list[Path]:
        """LXC's ``lxc.payload.<container>`` folders while the vnode runs."""
        return payload_cgroups(self._cname(ctx)) if self.is_running(ctx) else []

    def is_frozen(self, ctx: VNodeContext) -> bool:
        return self._freezer_state(ctx) in ("FROZEN", "FREEZING")

    def execute(
        self,
        ctx: VNodeContext,
        command: list[str],
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` as root in the vnode with a clean environment (PATH, HOME).

        Raises Conflict when the vnode is stopped or frozen, KernelError
        (errno ETIMEDOUT) after killing the command when ``timeout`` expires.
        """
        if not command:
            raise ValidationError("command", "an empty command")
        if not self.is_running(ctx):
            raise Conflict(f"vnode {ctx.vnode.name} is not running")
        if self.is_frozen(ctx):
            raise Conflict(f"vnode {ctx.vnode.name} is frozen")
        argv = [
            *self._argv("lxc-attach", ctx),
            "--clear-env",
            "--set-var", f"PATH={PATH}",
            "--set-var", "HOME=/root",
            "--set-var", "USER=root",
            "--", *command,
        ]  # fmt: skip
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # the attached command joins our group: killpg reaches it
        )
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise KernelError(
                f"execute in {ctx.vnode.name}", f"{command!r} timed out after {timeout}s",
                errno.ETIMEDOUT,
            ) from exc  # fmt: skip
        return ExecResult(
            out.decode(errors="replace"), err.decode(errors="replace"), proc.returncode
        )

    # --- sshd ------------------------------------------------------------------------

    def sshd_status(self, ctx: VNodeContext) -> str | None:
        """What our init wrote about sshd: ``running``, ``none: ...``, ``failed: ...``,
        or None while it is still starting (or the vnode is stopped)."""
        pid = self.init_pid(ctx)
        if pid is None:
            return None
        try:
            return Path(f"/proc/{pid}/root{SSHD_STATUS}").read_text().strip() or None
        except OSError:
            return None

    def wait_sshd(self, ctx: VNodeContext, timeout: float = 15.0) -> bool:
        """Wait until sshd listens in the vnode. False when the image has no sshd.

        Raises KernelError("sshd in <vnode>", ...) with the reason and the end of
        the vnode's init and sshd logs when sshd failed or did not come up in time.
        """
        pid = self.init_pid(ctx)
        if pid is None:
            raise Conflict(f"vnode {ctx.vnode.name} is not running")
        status_file = Path(f"/proc/{pid}/root{SSHD_STATUS}")
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            try:
                status = status_file.read_text().strip()
            except OSError:
                status = ""
            if status:
                break
            time.sleep(0.02)
        if status == "running" and _listens(pid, 22):
            return True
        if status.startswith("none"):
            return False
        logs = []
        for rel in (INIT_LOG, "/var/log/sshd.log"):
            try:
                text = Path(f"/proc/{pid}/root{rel}").read_text().splitlines()[-6:]
                logs.append(f"--- {rel}:\n" + "\n".join(text))
            except OSError:
                pass
        reason = status or f"sshd did not report within {timeout}s"
        if status == "running":
            reason = "sshd started but nothing listens on port 22"
        raise KernelError(f"sshd in {ctx.vnode.name}", "\n".join([reason, *logs]))

    # --- crash cleanup ---------------------------------------------------------------

    def cleaners(self) -> dict[str, Callable[[Entry], None]]:
        return {"lxc": clean_lxc, "dir": clean_dir}


def _listens(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on ``port`` in the network namespace of ``pid``."""
    hexport = f":{port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as fh:
                next(fh, None)
                for line in fh:
                    fields = line.split()
                    if fields[1].endswith(hexport) and fields[3] == "0A":
                        return True
        except OSError:
            continue
    return False
