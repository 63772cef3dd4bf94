"""``distemd`` on the machines: where it listens, start, stop, and the one shared token.

Each distemd runs detached (``setsid``), its pid in ``STATE_DIR/distemd.pid`` and its
output in ``STATE_DIR/distemd.log``. It is stopped by that pid, after checking that
the process is still a distemd: never by a pattern kill.
"""

from __future__ import annotations

import shlex

from pydistem.bootstrap.options import BootstrapOptions, MachinePaths
from pydistem.bootstrap.report import StepFailed
from pydistem.bootstrap.ssh import Session

#: Waits (with the venv's python) until a URL answers, or the pid died, or time ran out.
WAIT_HEALTH = r"""
import os, sys, time, urllib.request
url, pid, deadline = sys.argv[1], int(sys.argv[2]), time.time() + float(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("distemd exited")
    try:
        opener.open(url, timeout=2).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit("distemd did not answer in time")
"""


def ssh_server_address(session: Session) -> str:
    """The address this machine accepted our SSH connection on (``$SSH_CONNECTION``):
    the address its peers reach it at, also behind a jump host or a port forward."""
    r = session.run('printf "%s" "$SSH_CONNECTION"')
    fields = r.stdout.split()
    if len(fields) != 4:
        raise StepFailed(f"cannot tell this machine's address ($SSH_CONNECTION={r.stdout!r})")
    return fields[2]


def url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def distemd_argv(
    paths: MachinePaths,
    options: BootstrapOptions,
    address: str,
    *,
    coordinator_id: str | None = None,
) -> list[str]:
    """The distemd command line: coordinator (with this machine's agent in-process,
    pnode ``coordinator_id``) or agent."""
    argv = [paths.distemd, "--bind", address, "--state-dir", paths.state_dir, "--tag", paths.tag]
    if coordinator_id is None:
        return [*argv, "--port", str(options.agent_port)]
    argv += ["-d", "--pnode-id", coordinator_id, "--port", str(options.coordinator_port)]
    if options.distem_compat:
        argv.append("--distem-compat")
        if options.distem_compat_allow:
            argv += ["--distem-compat-allow", options.distem_compat_allow]
    return argv


def running(session: Session, paths: MachinePaths) -> tuple[int, str] | None:
    """(pid, command line) of the distemd recorded in the pid file, if it still runs."""
    pid_file = shlex.quote(paths.pid_file)
    r = session.run(
        f'pid=$(cat {pid_file} 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null '
        f"&& printf '%s ' \"$pid\" && tr '\\0' ' ' < /proc/$pid/cmdline",
        root=True,
    )
    pid, _, cmdline = r.stdout.partition(" ")
    if not r.ok or not pid.isdigit() or "distemd" not in cmdline:
        return None
    return int(pid), cmdline.strip()


def stop(session: Session, paths: MachinePaths) -> int | None:
    """Stop the recorded distemd (TERM, then KILL after 10 s); its pid, or None when
    none ran. Idempotent."""
    found = running(session, paths)
    if found is not None:
        pid = found[0]
        r = session.run(
            f"kill -TERM {pid}; i=0; while kill -0 {pid} 2>/dev/null && [ $i -lt 100 ]; do "
            f"sleep 0.1; i=$((i+1)); done; kill -0 {pid} 2>/dev/null && kill -KILL {pid}; true",
            root=True,
        )
        if not r.ok:
            raise StepFailed(f"cannot stop distemd (pid {pid}): {r.why()}")
    session.run(f"rm -f {shlex.quote(paths.pid_file)}", root=True)
    return found[0] if found else None


def read_token(session: Session, paths: MachinePaths) -> str | None:
    r = session.run(f"cat {shlex.quote(paths.token_file)} 2>/dev/null", root=True)
    token = r.stdout.strip()
    return token if r.ok and token else None


def write_token(session: Session, paths: MachinePaths, token: str) -> bool:
    """Write the shared token (mode 0600) unless it is there already; True if written."""
    if read_token(session, paths) == token:
        return False
    d, f = shlex.quote(paths.state_dir), shlex.quote(paths.token_file)
    r = session.run(
        f"umask 077; mkdir -p {d} && cat > {f}.new && mv {f}.new {f}", root=True, stdin=token + "\n"
    )
    if not r.ok:
        raise StepFailed(f"cannot write the token to {paths.token_file}: {r.why()}")
    return True


def start(
    session: Session,
    paths: MachinePaths,
    argv: list[str],
    health_url: str,
    timeout: float,
) -> int:
    """Start distemd detached and wait until ``health_url`` answers; its pid."""
    d, log = shlex.quote(paths.state_dir), shlex.quote(paths.log_file)
    cmd = " ".join(shlex.quote(a) for a in argv)
    r = session.run(
        f"mkdir -p {d} && cd / && {{ setsid {cmd} </dev/null >>{log} 2>&1 & "
        f"echo $! > {shlex.quote(paths.pid_file)}; echo $!; }}",
        root=True,
    )
    pid = r.stdout.strip()
    if not r.ok or not pid.isdigit():
        raise StepFailed(f"cannot start distemd: {r.why()}")
    wait = session.run(
        f"{shlex.quote(paths.python)} -c {shlex.quote(WAIT_HEALTH)} "
        f"{shlex.quote(health_url)} {pid} {timeout:g}",
        root=True,
        timeout=timeout + 30,
    )
    if not wait.ok:
        tail = session.run(f"tail -n 5 {log}", root=True).stdout.strip().splitlines()
        last = tail[-1] if tail else "no output"
        session.run(f"kill -0 {pid} 2>/dev/null && kill -TERM {pid}", root=True)
        raise StepFailed(f"{wait.why()} (log {paths.log_file}: {last})")
    return int(pid)
