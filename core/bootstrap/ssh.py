"""SSH sessions to machines with paramiko: direct, or through a jump host.

A jump host is reached once and carries one ``direct-tcpip`` channel per machine behind
it (what ``ssh -J`` does), so a hundred machines behind Grid'5000's access gateway cost
one connection to the gateway. Commands run through ``sh -c``; a session whose user is
not root but has passwordless sudo runs root commands through ``sudo -n``.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

from pydistem.bootstrap.report import StepFailed
from pydistem.model.machines import Machine

DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


class SshFailure(StepFailed):
    """A machine could not be reached or refused us; ``reason`` is for the summary."""


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def why(self) -> str:
        """The last line of stderr (or stdout), for a one-line reason."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return f"exit status {self.exit_code}"


def load_key(path: Path | None) -> paramiko.PKey:
    """The private key at ``path``, or the first of ``~/.ssh/id_{ed25519,ecdsa,rsa}``."""
    candidates = [path] if path else [Path.home() / ".ssh" / n for n in DEFAULT_KEYS]
    for candidate in candidates:
        if candidate.is_file():
            try:
                return paramiko.PKey.from_path(candidate)
            except (OSError, paramiko.SSHException) as exc:
                raise SshFailure(f"cannot load SSH key {candidate}: {exc}") from None
    if path:
        raise SshFailure(f"SSH key {path} does not exist")
    raise SshFailure(f"no SSH key given (--key) and none of ~/.ssh/{{{','.join(DEFAULT_KEYS)}}}")


def public_line(key: paramiko.PKey, comment: str = "pydistem-bootstrap") -> str:
    """The ``authorized_keys`` line of ``key``."""
    return f"{key.get_name()} {key.get_base64()} {comment}"


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """Accept a host key never seen (as ``StrictHostKeyChecking=accept-new``); a key
    that differs from ``known_hosts`` is still refused by paramiko itself."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        client.get_host_keys().add(hostname, key.get_name(), key)


class Gateways:
    """One shared connection per jump host, opened on first use (thread-safe)."""

    def __init__(self, key: paramiko.PKey, timeout: float, accept_new: bool) -> None:
        self._key, self._timeout, self._accept_new = key, timeout, accept_new
        self._lock = threading.Lock()
        self._clients: dict[Machine, paramiko.SSHClient] = {}

    def channel(self, gateway: Machine, target: Machine) -> paramiko.Channel:
        with self._lock:
            client = self._clients.get(gateway)
            transport = client.get_transport() if client else None
            if transport is None or not transport.is_active():
                try:
                    client = _connect(gateway, self._key, self._timeout, self._accept_new)
                except SshFailure as exc:
                    raise SshFailure(f"gateway {gateway}: {exc.reason}") from None
                self._clients[gateway] = client
                transport = client.get_transport()
        assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip", (target.host, target.port), ("127.0.0.1", 0), timeout=self._timeout
            )
        except (paramiko.SSHException, OSError) as exc:
            raise SshFailure(
                f"gateway {gateway} cannot open a channel to {target.host}:{target.port}: "
                f"{exc or type(exc).__name__}"
            ) from None

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def _connect(
    machine: Machine,
    key: paramiko.PKey,
    timeout: float,
    accept_new: bool,
    sock: paramiko.Channel | None = None,
) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    with contextlib.suppress(OSError):
        client.load_system_host_keys()
    client.set_missing_host_key_policy(_AcceptNew() if accept_new else paramiko.RejectPolicy())
    try:
        client.connect(
            machine.host,
            machine.port,
            username=machine.user,
            pkey=key,
            sock=sock,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            allow_agent=False,
            look_for_keys=False,
        )
    except paramiko.AuthenticationException:
        client.close()
        raise SshFailure(f"{machine.user}@ refused our key (authentication failed)") from None
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise SshFailure(f"host key differs from known_hosts ({exc})") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            reason = "; ".join(sorted({e.strerror or str(e) for e in exc.errors.values()}))
        if isinstance(exc, socket.timeout | TimeoutError):
            reason = f"no answer within {timeout:g} s"
        raise SshFailure(
            f"cannot connect to port {machine.port}: {reason or type(exc).__name__}"
        ) from None
    return client


class Session:
    """One SSH connection to one machine. ``sudo`` is True once root commands must go
    through ``sudo -n`` (the login user is not root)."""

    def __init__(
        self,
        machine: Machine,
        key: paramiko.PKey,
        *,
        timeout: float = 10.0,
        gateways: Gateways | None = None,
        accept_new: bool = True,
    ) -> None:
        self.machine = machine
        sock = None
        if machine.gateway is not None:
            if gateways is None:
                raise SshFailure("machine has a gateway but no gateway pool was given")
            sock = gateways.channel(machine.gateway, machine)
        self._client = _connect(machine, key, timeout, accept_new, sock)
        self.sudo = False

    @property
    def user(self) -> str:
        return self.machine.user

    def run(
        self, command: str, *, root: bool = False, stdin: str | bytes | None = None,
        timeout: float = 600.0,
    ) -> Result:  # fmt: skip
        """Run ``command`` with ``sh -c`` (as root through sudo when needed)."""
        line = f"sh -c {shlex.quote(command)}"
        if root and self.sudo:
            line = f"sudo -n {line}"
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise SshFailure("the SSH connection is closed")
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            with transport.open_session(timeout=timeout) as chan:
                chan.exec_command(line)
                if stdin is not None:
                    chan.sendall(stdin.encode() if isinstance(stdin, str) else stdin)
                chan.shutdown_write()
                # read both streams as they come: a full stderr window must not stall stdout
                while True:
                    busy = False
                    while chan.recv_ready():
                        out += chan.recv(65536)
                        busy = True
                    while chan.recv_stderr_ready():
                        err += chan.recv_stderr(65536)
                        busy = True
                    if (
                        chan.exit_status_ready()
                        and not chan.recv_ready()
                        and not chan.recv_stderr_ready()
                    ):
                        break
                    if time.monotonic() > deadline:
                        raise SshFailure(f"command did not finish within {timeout:g} s")
                    if not busy:
                        time.sleep(0.01)
                code = chan.recv_exit_status()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SshFailure(f"connection lost while running a command: {exc}") from None
        return Result(code, out.decode(errors="replace"), err.decode(errors="replace"))

    def put(self, data: bytes, path: str, mode: int = 0o644) -> None:
        """Write ``data`` to ``path`` as the login user (SFTP)."""
        try:
            with self._client.open_sftp() as sftp, sftp.open(path, "wb") as fh:
                fh.write(data)
                sftp.chmod(path, mode)
        except (paramiko.SSHException, OSError) as exc:
            raise SshFailure(f"cannot copy {path}: {exc}") from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
