"""``distem deploy`` / ``distem destroy``: a platform file to a running platform and back.

``deploy`` starts a background ``distemd -d`` when no coordinator answers locally
(remembered in a pid file so that ``destroy`` stops it), initialises the local pnode,
deploys the file, waits for every vnode, then prints the vnodes and a ping matrix.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydistem.cli import output
from pydistem.client import Client, ExecResult, PartialFailure
from pydistem.errors import PydistemError, ValidationError
from pydistem.model.daemon import DaemonSettings
from pydistem.model.platform_file import Platform, load_platform

LOG_FILE = Path(os.environ.get("PYDISTEM_LOG_FILE", "/var/log/pydistem/distemd.log"))
PID_FILE = Path(os.environ.get("PYDISTEM_PID_FILE", "/run/pydistem/distemd.pid"))
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_local(url: str) -> bool:
    return (urlparse(url).hostname or "") in LOCAL_HOSTS


def distemd_command(port: int, settings: DaemonSettings | None = None) -> list[str]:
    """How to run the ``distemd`` of this installation (the venv's script when present),
    with the options of a platform file's ``daemon:`` section."""
    script = Path(sys.executable).parent / "distemd"
    head = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from pydistem.daemon import main; sys.exit(main())"
    ]  # fmt: skip
    return [*head, "-d", "--port", str(port), *(settings or DaemonSettings()).distemd_args()]


def check_daemon(client: Client, settings: DaemonSettings) -> None:
    """ValidationError naming ``daemon.*`` when the running coordinator lacks an option
    the platform file's ``daemon:`` section asks for (they cannot change while it runs)."""
    if not settings.distem_compat:
        return
    served = client.daemon_info().get("distem_compat")
    how = (
        "`distem destroy` stops the coordinator `distem deploy` started; then deploy again"
        if is_local(client.url)
        else "restart its distemd with these options (`distem bootstrap --distem-compat`)"
    )
    if not served:
        raise ValidationError(
            "daemon.distem_compat",
            f"the coordinator at {client.url} runs without --distem-compat: {how}",
        )
    wanted = settings.allow_string().split(",")
    if sorted(served) != sorted(wanted):
        raise ValidationError(
            "daemon.distem_compat_allow",
            f"the coordinator at {client.url} allows {','.join(served)}, not "
            f"{','.join(wanted)}: {how}",
        )


def ensure_coordinator(
    client: Client, wait: float = 30.0, settings: DaemonSettings | None = None
) -> bool:
    """Make sure a coordinator answers at ``client.url``; True if this call started one.

    Starts ``distemd -d`` (with ``settings``, a platform file's ``daemon:`` section)
    detached (new session, log in LOG_FILE, pid in PID_FILE) only for a local URL.
    Idempotent: a running coordinator is kept, and ValidationError names the setting it
    lacks. Raises PydistemError when it does not come up.
    """
    settings = settings or DaemonSettings()
    if client.health():
        check_daemon(client, settings)
        return False
    if not is_local(client.url):
        raise PydistemError(f"no coordinator answers at {client.url} (start `distemd -d` there)")
    port = urlparse(client.url).port or 4567
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    PID_FILE.parent.mkdir(parents=True, exist_ok=True)
    cmd = distemd_command(port, settings)
    with LOG_FILE.open("ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "LANG": "C"},
        )
    PID_FILE.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + wait
    with output.spinner(f"starting the coordinator ({shlex.join(cmd)})"):
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                PID_FILE.unlink(missing_ok=True)
                raise PydistemError(
                    f"distemd exited with status {proc.returncode}; last lines of {LOG_FILE}:\n"
                    + _tail(LOG_FILE)
                )
            if client.health():
                output.done(f"coordinator running at {client.url} (pid {proc.pid}, log {LOG_FILE})")
                return True
            time.sleep(0.2)
    raise PydistemError(
        f"distemd did not answer on {client.url} within {wait:.0f}s; see {LOG_FILE}"
    )


def stop_started_daemon(timeout: float = 15.0) -> int | None:
    """Stop the ``distemd`` that ``ensure_coordinator`` started (by its recorded pid).

    Returns the pid stopped, or None when there was none. Idempotent.
    """
    try:
        pid = int(PID_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    if b"distemd" not in cmdline and b"pydistem.daemon" not in cmdline:
        PID_FILE.unlink(missing_ok=True)  # gone, or the pid was reused by something else
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if _zombie(pid):
            break
        time.sleep(0.1)
    else:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
    PID_FILE.unlink(missing_ok=True)
    return pid


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def ensure_local_pnode(client: Client) -> None:
    """Initialise the local pnode unless one is already there. Idempotent."""
    if not client.pnodes_info():
        with output.spinner("initialising pnode localhost"):
            client.pnode_init(["localhost"])
        output.done("pnode localhost initialised")


def first_address(vnode: dict[str, Any]) -> str | None:
    for vif in vnode.get("vifaces") or []:
        if vif.get("address"):
            return str(vif["address"])
    return None


def ping_matrix(client: Client, vnodes: list[dict[str, Any]]) -> dict[str, dict[str, bool | None]]:
    """Every vnode pings every other one, all vnodes in parallel; ``{src: {dst: ok}}``.

    Up to 3 tries of one echo (1 s each), a reply to any counts: right after vnodes
    start, their first echoes are sometimes lost while the data path comes up.
    """
    addr = {v["name"]: first_address(v) for v in vnodes}
    targets = {a: n for n, a in addr.items() if a}
    sources = [n for n, a in addr.items() if a]
    if len(sources) < 2:
        return {}
    script = (
        "for a in " + " ".join(targets) + "; do "
        '( r=fail; for i in 1 2 3; do ping -c 1 -W 1 "$a" >/dev/null 2>&1 && r=ok && break; '
        'done; echo "$a $r" ) & '
        "done; wait"
    )
    results: dict[str, ExecResult] = client.vnodes_execute(sources, script)
    reach: dict[str, dict[str, bool | None]] = {}
    for src, res in results.items():
        row: dict[str, bool | None] = {}
        for line in res.lines:
            parts = line.split()
            if len(parts) == 2 and parts[0] in targets:
                row[targets[parts[0]]] = parts[1] == "ok"
        reach[src] = row
    return reach


def deploy(
    client: Client,
    path: str,
    run: str | None = None,
    destroy_after: bool = False,
    timeout: float = 600,
    as_json: bool = False,
    pnodes: list[Any] | None = None,
    remote: bool = False,
    platform: Platform | None = None,
) -> int:
    """The whole ``distem deploy FILE`` flow; returns the exit status.

    ``pnodes``: the targets a testbed adapter prepared (default: this machine; empty:
    the coordinator already has its pnodes). ``remote``: the coordinator is one a
    testbed's bootstrap started, never started or stopped here. ``platform``: the file
    already validated and fitted to a reservation (pydistem.adapters.fit)."""
    if platform is None:
        platform = load_platform(path)  # bad file: ValidationError before anything starts
    if not remote:
        ensure_coordinator(client, settings=platform.daemon)
    elif not client.health():
        raise PydistemError(f"the coordinator at {client.url} does not answer")
    else:
        check_daemon(client, platform.daemon)
    if pnodes is None:
        ensure_local_pnode(client)
    elif pnodes:
        with output.spinner(f"initialising {len(pnodes)} pnode(s)"):
            client.pnode_init(pnodes)
        output.done(f"pnodes {', '.join(map(str, pnodes))} initialised")
    names = {v.name for v in platform.vnodes}

    def poll() -> str:
        return output.count_status(client.vnodes_info(), names)

    label = f"deploying {len(platform.vnetworks)} vnetwork(s), {len(names)} vnode(s) from {path}"
    present = {v["name"] for v in client.vnodes_info()}
    vnets_present = {n["name"] for n in client.vnetworks_info()}
    if names and names <= present and {n.name for n in platform.vnetworks} <= vnets_present:
        # already deployed (e.g. the quick start run twice): show it, start what is down
        output.note(f"{path} is already deployed; `distem destroy` removes it")
        # suppress: the table below shows which vnode failed and why
        with output.spinner("starting what is down", poll=poll), suppress(PartialFailure):
            client.vnodes_start(sorted(names))
    else:
        with output.spinner(label, poll=poll):
            client.platform_deploy(platform)
        output.done(f"deployed {path}")
        if platform.events:
            output.note(
                f"{len(platform.events)} event item(s) scheduled: `distem events start` plays "
                "them, `distem events log` shows what was applied when"
            )
    ready = True
    if names:
        with output.spinner("waiting for every vnode to answer", poll=poll):
            ready = client.wait_vnodes(timeout=timeout, vnodes=sorted(names))
    order = {v.name: i for i, v in enumerate(platform.vnodes)}
    vnodes = sorted(
        (v for v in client.vnodes_info() if v.get("name") in order), key=lambda v: order[v["name"]]
    )
    reach = ping_matrix(client, vnodes) if ready else {}
    if as_json:
        output.print_json({"ready": ready, "vnodes": vnodes, "ping": reach})
    else:
        output.out.print(output.vnodes_table(vnodes))
        if reach:
            output.out.print(output.ping_table([v["name"] for v in vnodes], reach))
    if not ready:
        output.error(
            PydistemError(f"not ready after {timeout:.0f}s: {', '.join(client.pending_vnodes)}")
        )
    status = 0 if ready else 1
    if run is not None and ready:
        with output.spinner(f"running {run!r} in {len(names)} vnode(s)"):
            results = client.vnodes_execute(sorted(names), run)
        if as_json:
            output.print_json({n: r.__dict__ for n, r in results.items()})
        else:
            output.out.print(output.exec_results_table(results))
        status = 0 if all(r.ok for r in results.values()) else 1
    if destroy_after or run is not None:
        destroy(client, stop_daemon=not remote)
    elif not as_json:
        first = vnodes[0]["name"] if vnodes else "VNODE"
        output.out.print(
            "\nThe platform is running. Next:\n"
            f"  distem execute {first} -- hostname      run a command in a vnode\n"
            "  distem status                          what is running\n"
            "  distem destroy                         remove everything and stop the daemon"
        )
    return status


def destroy(client: Client, stop_daemon: bool = True) -> int:
    """``distem destroy``: quit (remove every vnode, vnetwork, pnode state) and stop the
    daemon ``deploy`` started. Idempotent; returns the exit status."""
    if client.health():
        with output.spinner("removing every vnode and vnetwork"):
            client.quit()
        output.done("platform removed")
    else:
        output.note(f"no coordinator answers at {client.url}: nothing to remove")
    pid = stop_started_daemon() if stop_daemon and is_local(client.url) else None
    if pid is not None:
        output.done(f"stopped distemd (pid {pid})")
    return 0
