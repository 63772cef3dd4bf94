"""The light ``netns`` runtime: a network namespace plus a control group, no rootfs.

For large network-only experiments. Commands run on the pnode's filesystem inside
the vnode's network namespace (prepared by the agent) and its cgroup, in a
session of their own; stopping the vnode kills every process of the cgroup.

Starting a vnode costs no more than the kernel must do: no file of its own. Its
cgroup is created by the first command run in it (or CPU/memory limit, or freeze),
and its /etc/hosts is one file shared by the vnodes started with the same hosts text
(the platform's, 2 lines per vnode: one copy each made the start of N vnodes O(N²)).
Which vnodes run, and the hosts file each sees, is one row per running vnode in
``<state_dir>/netns-running.sqlite`` (kept across agent restarts).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from pydistem.agent.cgroups import CGroup, clean_cgroup
from pydistem.agent.journal import Entry
from pydistem.errors import Conflict, KernelError
from pydistem.plugins.runtimes.base import ExecResult, Runtime, VNodeContext
from pydistem.state.store import Store

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18


def _group(ctx: VNodeContext) -> CGroup:
    """The vnode's cgroup, named like its (agent-unique) network namespace."""
    return CGroup(Path(ctx.netns_path).name)


class NetnsRuntime(Runtime):
    """vnodes that are only a network namespace and a process group."""

    name = "netns"
    needs_image = False
    kernel_bound = True
    needs_workdir = False

    def __init__(self, state_dir: Path, journal) -> None:  # type: ignore[no-untyped-def]
        super().__init__(Path(state_dir), journal)
        self._marks = Store(self.state_dir / "netns-running.sqlite")
        #: namespace name -> the hosts file of each running vnode
        self._running = {name: str(doc["hosts"]) for name, doc in self._marks.all("running")}
        self._marks_lock = threading.Lock()

    @staticmethod
    def _key(ctx: VNodeContext) -> str:
        """A vnode's mark key: its namespace's name, unique on this pnode."""
        return Path(ctx.netns_path).name

    def _mark(self, ctx: VNodeContext, hosts: str | None) -> None:
        key = self._key(ctx)
        with self._marks_lock:
            if hosts is None:
                if self._running.pop(key, None) is not None:
                    self._marks.delete("running", key)
            elif self._running.get(key) != hosts:
                self._running[key] = hosts
                self._marks.put("running", key, {"hosts": hosts})

    def _shared_hosts(self, text: str) -> Path:
        """The file holding ``text``, written once for every vnode that needs it."""
        folder = self.state_dir / "netns-hosts"
        path = folder / hashlib.sha1(text.encode()).hexdigest()[:16]
        if not path.exists():
            self.journal.add("dir", str(folder))
            folder.mkdir(exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_native_id()}")
            tmp.write_text(text)
            os.replace(tmp, path)
        return path

    def start(self, ctx: VNodeContext) -> None:
        self._mark(ctx, str(self._shared_hosts(ctx.etc_hosts)))

    def _ensure_group(self, ctx: VNodeContext) -> CGroup:
        """The vnode's cgroup, created on first need (idempotent)."""
        group = _group(ctx)
        if not all(d.is_dir() for d in group.dirs):
            group.create(self.journal)
        return group

    def stop(self, ctx: VNodeContext) -> None:
        _group(ctx).kill_all()
        self._mark(ctx, None)

    def remove(self, ctx: VNodeContext) -> None:
        group = _group(ctx)
        group.remove(self.journal)
        self._mark(ctx, None)

    def is_running(self, ctx: VNodeContext) -> bool:
        return self._key(ctx) in self._running

    def forget_all(self) -> None:
        with self._marks_lock:
            self._running.clear()
            self._marks.delete_kind("running")

    def freeze(self, ctx: VNodeContext) -> None:
        self._ensure_group(ctx).freeze()

    def unfreeze(self, ctx: VNodeContext) -> None:
        _group(ctx).thaw()

    def cgroup_dirs(self, ctx: VNodeContext) -> list[Path]:
        if not self.is_running(ctx):
            return [d for d in _group(ctx).dirs if d.is_dir()]
        return self._ensure_group(ctx).dirs

    def execute(
        self,
        ctx: VNodeContext,
        command: list[str],
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        running_hosts = self._running.get(self._key(ctx))
        if running_hosts is None:
            raise Conflict(f"vnode {ctx.vnode.name} is not running")
        procs = self._ensure_group(ctx).add_pid_paths()
        netns = ctx.netns_path
        hosts = running_hosts.encode()
        hostname = ctx.vnode.name.encode()

        def enter() -> None:  # runs in the child between fork and exec: os-level calls only
            pid = str(os.getpid()).encode()
            for path in procs:
                fd = os.open(path, os.O_WRONLY)
                os.write(fd, pid)
                os.close(fd)
            fd = os.open(netns, os.O_RDONLY)
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                os._exit(126)
            os.close(fd)
            # a private view: the vnode's hostname and /etc/hosts, as `ip netns exec` does
            if _libc.unshare(_CLONE_NEWNS | _CLONE_NEWUTS) != 0:
                os._exit(126)
            _libc.sethostname(hostname, len(hostname))
            _libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None)
            _libc.mount(hosts, b"/etc/hosts", None, _MS_BIND, None)

        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "PYDISTEM_VNODE": ctx.vnode.name,
            "HOSTNAME": ctx.vnode.name,
        }
        try:
            proc = subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                timeout=timeout,
                preexec_fn=enter,
                start_new_session=True,
                env=env,
                cwd="/",
                check=False,
            )
        except FileNotFoundError as exc:
            return ExecResult("", f"{command[0]}: command not found ({exc.strerror})", 127)
        except subprocess.TimeoutExpired as exc:
            raise KernelError(
                f"execute in {ctx.vnode.name}", f"timed out after {timeout} s"
            ) from exc
        return ExecResult(
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
            proc.returncode,
        )

    def cleaners(self) -> dict[str, Callable[[Entry], None]]:
        return {"cgroup": clean_cgroup}
