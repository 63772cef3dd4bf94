"""The contract of a vnode runtime plugin (stevedore group ``pydistem.runtimes``).

A runtime turns a vnode spec into something that runs: a container (``lxc``) or
a bare network namespace with a process group (``netns``). The pnode agent owns
networking: before ``start`` it has created the vnode's network namespace at
``ctx.netns_path`` with its vifaces configured inside; the runtime must run the
vnode's processes in that namespace. Every kernel object a runtime creates is
recorded in ``ctx.journal`` BEFORE it is created, and ``cleaners()`` says how to
remove each kind it records, so ``distem clean`` works after a crash.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydistem.agent.journal import Entry, Journal
from pydistem.model.specs import VNode


@dataclass
class ExecResult:
    """What a command run in a vnode gave back."""

    stdout: str
    stderr: str
    exit_code: int


@dataclass
class VNodeContext:
    """Everything a runtime needs about one vnode on this pnode."""

    vnode: VNode  # the full spec, addresses resolved
    netns_path: str  # the vnode's network namespace, already configured
    #: private per-vnode folder on this pnode, journaled by the agent; it exists when the
    #: runtime ``needs_workdir`` or the vnode has limits (a runtime may make it itself)
    workdir: Path
    etc_hosts: str  # the /etc/hosts the vnode must see
    journal: Journal


class Runtime(abc.ABC):
    """One way of running vnodes. Instances are made once per agent."""

    name: ClassVar[str]
    #: True when vnodes of this runtime need ``vfilesystem.image``.
    needs_image: ClassVar[bool] = False
    #: True when starting a vnode is kernel work only, no process to wait for: the
    #: agent then starts at most one such vnode per core at once.
    kernel_bound: ClassVar[bool] = False
    #: False when the runtime keeps nothing in ``ctx.workdir``: the agent then makes
    #: no folder for a vnode without limits (one file creation less per start).
    needs_workdir: ClassVar[bool] = True

    def __init__(self, state_dir: Path, journal: Journal) -> None:
        self.state_dir = state_dir
        self.journal = journal

    def check_host(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`pydistem.errors.Unsupported` if this pnode cannot run it."""

    def validate(self, vnode: VNode) -> None:  # noqa: B027 - optional hook
        """Raise ValidationError(field, reason) for a vnode this runtime cannot run
        here (e.g. missing image file). Called for every vnode before anything is built.
        """

    @abc.abstractmethod
    def start(self, ctx: VNodeContext) -> None:
        """Build what is missing (rootfs...) and start the vnode. Idempotent: starting a
        running vnode does nothing; starting a stopped one restarts it.
        Raises KernelError on failure, leaving only journaled objects behind."""

    @abc.abstractmethod
    def stop(self, ctx: VNodeContext) -> None:
        """Stop every process of the vnode, keep its files. Idempotent."""

    @abc.abstractmethod
    def remove(self, ctx: VNodeContext) -> None:
        """Stop the vnode and delete everything ``start`` created. Idempotent."""

    @abc.abstractmethod
    def execute(
        self,
        ctx: VNodeContext,
        command: list[str],
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` (an argv) in the running vnode as root and wait for it.
        Raises Conflict if the vnode is not running."""

    @abc.abstractmethod
    def is_running(self, ctx: VNodeContext) -> bool:
        """Whether the vnode's processes run."""

    def freeze(self, ctx: VNodeContext) -> None:
        """Suspend every process of the vnode (freezer cgroup)."""
        from pydistem.errors import Unsupported

        raise Unsupported(f"runtime {self.name} cannot freeze vnodes")

    def unfreeze(self, ctx: VNodeContext) -> None:
        """Resume a frozen vnode."""
        from pydistem.errors import Unsupported

        raise Unsupported(f"runtime {self.name} cannot unfreeze vnodes")

    def rootfs_archive(self, ctx: VNodeContext, dest: Path) -> None:
        """Write a gzip tarball of the root filesystem the running vnode sees to ``dest``
        (the contents of ``/proc``, ``/sys`` and ``/dev`` left out). Raises Conflict if
        the vnode does not run, Unsupported if the runtime has no root filesystem of
        its own."""
        from pydistem.errors import Unsupported

        raise Unsupported(f"runtime {self.name} has no root filesystem of its own to archive")

    def cgroup_dirs(self, ctx: VNodeContext) -> list[Path]:
        """The control-group folders that hold every process of the running vnode (one
        per v1 hierarchy, or the one v2 folder); CPU and memory limits are written
        there. Empty when the vnode does not run. Raises Unsupported when this runtime
        cannot say (then limits cannot be set)."""
        from pydistem.errors import Unsupported

        raise Unsupported(f"runtime {self.name} cannot limit CPU or memory")

    def forget_all(self) -> None:  # noqa: B027 - optional hook
        """Forget the per-vnode state this runtime keeps outside the journal (the agent
        calls it from ``clean``, once every journaled object is removed)."""

    def cleaners(self) -> dict[str, Callable[[Entry], None]]:
        """For each journal ``kind`` this runtime records, how to remove one such
        object given only its journal entry (no live state: used after a crash).
        Cleaners must be idempotent and tolerate an object already gone."""
        return {}
