"""Running the stand-ins' sshd: start it, wait until it listens, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


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
