"""What ``distem bootstrap`` may do and where it puts things: :class:`BootstrapOptions`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydistem.errors import ValidationError
from pydistem.model.machines import Machine

DEFAULT_VENV = "/opt/pydistem/venv"
DEFAULT_STATE_DIR = "/var/lib/pydistem"
_TAG = re.compile(r"^[a-z0-9]{1,6}$")


@dataclass(frozen=True)
class BootstrapOptions:
    """Options of :func:`pydistem.bootstrap.prepare`.

    ``venv``, ``state_dir`` and ``tag`` may hold ``{index}`` (1-based position in the
    machine list) and ``{id}`` (the machine id with ``:`` as ``_``), for machines that
    share a file system (the test bed's hosts, NFS homes).
    """

    key: Path | None = None  # private key; default ~/.ssh/id_{ed25519,ecdsa,rsa}
    connect_timeout: float = 10.0
    accept_new_host_keys: bool = True  # as ssh's StrictHostKeyChecking=accept-new
    strict: bool = False  # one failed machine fails the run; no daemon is left started
    distem_compat: bool = False  # distemd -d --distem-compat on the coordinator
    distem_compat_allow: str | None = None  # its --distem-compat-allow
    venv: str = DEFAULT_VENV  # where pydistem is installed (a virtualenv)
    state_dir: str = DEFAULT_STATE_DIR  # distemd --state-dir: token, journal, pid, log
    tag: str = "a"  # distemd --tag
    coordinator_port: int = 4567
    agent_port: int = 4568
    wheel: Path | None = None  # the pydistem wheel to install; default: built from source
    wheelhouse: Path | None = None  # wheels of its dependencies: pip install --no-index
    reinstall: bool = False  # install pydistem even when the same version is there
    install_packages: bool = True  # apt-get LXC / iproute2 when missing or too old
    daemon_timeout: float = 60.0  # seconds for a distemd to answer after it starts

    def for_machine(self, machine: Machine, index: int) -> MachinePaths:
        """The venv, state dir and tag of the ``index``-th machine (1-based)."""
        fields = {"index": str(index), "id": machine.id.replace(":", "_")}
        venv = self.venv.format(**fields)
        state = self.state_dir.format(**fields)
        tag = self.tag.format(**fields)
        if not _TAG.match(tag):
            raise ValidationError("tag", f"{tag!r}: 1 to 6 lower-case letters or digits")
        for name, path in (("venv", venv), ("state_dir", state)):
            if not path.startswith("/") or any(c in path for c in "'\"\\$`\n "):
                raise ValidationError(name, f"{path!r}: an absolute path without quotes or $")
        return MachinePaths(venv, state, tag)


@dataclass(frozen=True)
class MachinePaths:
    venv: str
    state_dir: str
    tag: str

    @property
    def distemd(self) -> str:
        return f"{self.venv}/bin/distemd"

    @property
    def python(self) -> str:
        return f"{self.venv}/bin/python"

    @property
    def pid_file(self) -> str:
        return f"{self.state_dir}/distemd.pid"

    @property
    def log_file(self) -> str:
        return f"{self.state_dir}/distemd.log"

    @property
    def token_file(self) -> str:
        return f"{self.state_dir}/token"
