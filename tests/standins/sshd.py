"""The test sshds (stand-in frontend and nodes, test-bed hosts): their config, start
them, wait until they listen, stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

#: what every test sshd says: keys only, root by key, no PAM, DNS or banners, many
#: connections at once (a bootstrap opens one per machine and phase)
COMMON = (
    "StrictModes no",
    "UsePAM no",
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UseDNS no",
    "PrintMotd no",
    "PrintLastLog no",
    "MaxStartups 100:30:200",
)


def write_sshd_config(
    path: Path,
    *,
    listen: str,
    port: int,
    host_key: Path,
    pid_file: Path,
    authorized_keys: str | Path,
    extra: tuple[str, ...] = (),
) -> Path:
    """Write an sshd config for a test sshd to ``path`` (returned); ``extra``: more lines."""
    lines = [
        f"ListenAddress {listen}",
        f"Port {port}",
        f"HostKey {host_key}",
        f"PidFile {pid_file}",
        f"AuthorizedKeysFile {authorized_keys}",
        *COMMON,
        *extra,
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def spawn_sshd(cmd: list[str], log_path: Path, probe: list[str], what: str) -> subprocess.Popen:
    """Start ``cmd`` (an ``sshd -D``) in its own session, its output appended to
    ``log_path``; return once ``probe`` (an ``ss`` command) prints its listening socket.
    RuntimeError naming ``what`` when sshd exits or does not listen within 10 s."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} sshd exited: " + log_path.read_text())
        if subprocess.run(probe, capture_output=True, text=True).stdout.strip():
            return proc
        time.sleep(0.05)
    stop_sshd(proc)
    raise RuntimeError(f"{what} sshd did not listen within 10 s")


def stop_sshd(proc: subprocess.Popen | None) -> None:
    """Stop an sshd of :func:`spawn_sshd` and its session (None: nothing to do)."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(5)
