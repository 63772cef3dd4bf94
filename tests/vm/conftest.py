"""ONE virtme-ng VM (a full Debian kernel, cgroup v2) per test session for every guest
script of tests/vm: each writes its JSON into a --rwdir folder, the tests assert on it.
Tools: tests/vm/setup_vm_tools.sh (qemu, linux-image-amd64, virtme-ng)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
VNG = VENV_BIN / "vng"
BOOT_TIMEOUT_S = 420
#: result name -> guest script (run in this order, each even if one before failed)
GUESTS = {"netem": "guest_netem.py", "limits": "guest_limits.py", "peers": "guest_peers.py"}


def _kernel() -> str | None:
    images = sorted(glob.glob("/boot/vmlinuz-*-amd64"), key=os.path.getmtime)
    return images[-1] if images else None


def _missing() -> str | None:
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 missing"
    if not VNG.exists():
        return f"virtme-ng missing ({VNG})"
    if _kernel() is None:
        return "no /boot/vmlinuz-*-amd64 (linux-image-amd64)"
    return None


@pytest.fixture(scope="session")
def vm_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Boot the VM once, run every guest script; ``results[name]`` is its JSON (None if
    it wrote nothing), ``vm_s`` the wall time of the whole VM, ``log`` its output tail."""
    reason = _missing()
    if reason:
        pytest.skip(f"{reason}: run tests/vm/setup_vm_tools.sh")
    out = tmp_path_factory.mktemp("vm")
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
           "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    runs = "; ".join(
        f"{sys.executable} tests/vm/{script} {out / name}.json" for name, script in GUESTS.items()
    )
    cmd = f"cd {ROOT} && {{ {runs}; }}"
    argv = [str(VNG), "--run", _kernel(), "--disable-kvm", "--disable-microvm", "--user", "root",
            "--cpus", "2", "--memory", "1G", "--rwdir", str(out), "--exec", cmd]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=out, env=env, capture_output=True, text=True,
                          timeout=BOOT_TIMEOUT_S)  # fmt: skip
    results = {}
    for name in GUESTS:
        path = out / f"{name}.json"
        results[name] = json.loads(path.read_text()) if path.exists() else None
    log = f"rc {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return {"results": results, "vm_s": time.monotonic() - t0, "log": log}
