"""A local TCP port forwarded through an SSH gateway (``ssh -L`` in paramiko).

From outside a testbed, the machines are reached only through its gateway: the
coordinator the bootstrap started on the first machine is then reached through a
:class:`Tunnel` — a listener on 127.0.0.1 whose every connection becomes a
``direct-tcpip`` channel from the gateway to ``host:port``. Closed (listener, channels,
SSH connection) by ``close()`` or the ``with`` block.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from pathlib import Path

import paramiko

from pydistem.errors import PydistemError
from pydistem.model.machines import Machine


class Tunnel:
    """``127.0.0.1:<local_port>`` -> ``gateway`` -> ``host:port``."""

    def __init__(
        self, gateway: Machine, host: str, port: int, key: Path | None = None, timeout: float = 15
    ) -> None:
        self.gateway, self.host, self.port = gateway, host, port
        self._ssh = paramiko.SSHClient()
        self._ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # as accept-new
        try:
            self._ssh.connect(
                gateway.host,
                port=gateway.port,
                username=gateway.user,
                key_filename=str(key) if key else None,
                timeout=timeout,
                allow_agent=True,
                look_for_keys=key is None,
            )
        except (OSError, paramiko.SSHException) as exc:
            self._ssh.close()
            raise PydistemError(f"cannot open a tunnel through {gateway}: {exc}") from None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.local_port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="tunnel-accept").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, peer = self._listener.accept()
            except OSError:
                return
            transport = self._ssh.get_transport()
            try:
                if transport is None:
                    raise paramiko.SSHException("gateway connection lost")
                chan = transport.open_channel("direct-tcpip", (self.host, self.port), peer)
            except (OSError, paramiko.SSHException):
                conn.close()
                continue
            threading.Thread(target=_pump, args=(conn, chan), daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._ssh.close()

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pump(conn: socket.socket, chan: paramiko.Channel) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            ready, _, _ = select.select([conn, chan], [], [], 60)
            if conn in ready:
                data = conn.recv(65536)
                if not data:
                    break
                chan.sendall(data)
            if chan in ready:
                data = chan.recv(65536)
                if not data:
                    break
                conn.sendall(data)
    except (OSError, paramiko.SSHException):
        pass
    finally:
        chan.close()
        conn.close()
