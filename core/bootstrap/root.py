"""Root access on a machine: log in as root, or gain it through passwordless sudo.

When the login user is not root but ``sudo -n`` works (CloudLab, Chameleon), our public
key is appended to the ``authorized_keys`` file that the machine's sshd reads for root
(found with ``sshd -T``, so a custom ``AuthorizedKeysFile`` is honoured) and we log in
again as root. When sshd refuses root logins, root commands go through ``sudo -n``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

import paramiko

from pydistem.bootstrap.report import MachineReport, StepFailed
from pydistem.bootstrap.ssh import Session, SshFailure, public_line

#: Runs as root: prints the authorized_keys file of root for the sshd serving this
#: session (the ``-f`` config of the nearest sshd ancestor, else the default config).
ROOT_KEYS_FILE = r"""
pid=$$; conf=/etc/ssh/sshd_config
while [ "${pid:-1}" -gt 1 ]; do
  if [ "$(cat /proc/$pid/comm 2>/dev/null)" = sshd ]; then
    f=$(tr '\0' ' ' < /proc/$pid/cmdline | sed -n 's/.* -f *\([^ ]*\).*/\1/p')
    if [ -n "$f" ]; then conf=$f; break; fi
  fi
  pid=$(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | cut -d' ' -f2)
done
sshd=$(command -v sshd || echo /usr/sbin/sshd)
home=$(getent passwd root | cut -d: -f6); home=${home:-/root}
first=$("$sshd" -T -f "$conf" -C user=root,host=localhost,addr=127.0.0.1 2>/dev/null \
  | awk '$1 == "authorizedkeysfile" {print $2; exit}')
[ -n "$first" ] || first=.ssh/authorized_keys
first=$(printf '%s' "$first" | sed "s|%h|$home|g; s|%u|root|g; s|%U|0|g; s|%%|%|g")
case "$first" in /*) ;; *) first="$home/$first";; esac
printf '%s\n' "$first"
"""


def append_key_script(path: str, key_line: str) -> str:
    """Shell (as root) that appends ``key_line`` to ``path`` unless its key is there.
    A missing directory is created mode 0700; an existing one is left as it is."""
    b64 = key_line.split()[1]
    d = path.rsplit("/", 1)[0] or "/"
    return (
        f"umask 077; [ -d {shlex.quote(d)} ] || mkdir -p {shlex.quote(d)} || exit 1; "
        f"grep -qF {shlex.quote(b64)} {shlex.quote(path)} 2>/dev/null || "
        f"printf '%s\\n' {shlex.quote(key_line)} >> {shlex.quote(path)}"
    )


def ensure_root(
    session: Session,
    key: paramiko.PKey,
    report: MachineReport,
    reconnect_as_root: Callable[[], Session],
) -> Session:
    """A session whose root commands run as root. Returns ``session`` itself (root
    login, or sudo when root logins are refused) or a new root session (the caller
    closes the old one). Idempotent: the key is appended once. Raises StepFailed."""
    r = session.run("id -u")
    if not r.ok:
        raise StepFailed(f"`id -u` failed: {r.why()}")
    if r.stdout.strip() == "0":
        report.facts["root"] = "login"
        return session
    sudo = session.run("sudo -n true")
    if not sudo.ok:
        raise StepFailed(
            f"{session.user} is not root and has no passwordless sudo ({sudo.why()}); "
            "log in as root, or give this user `NOPASSWD` in sudoers"
        )
    session.sudo = True
    where = session.run(ROOT_KEYS_FILE, root=True)
    path = where.stdout.strip().splitlines()[-1] if where.ok and where.stdout.strip() else ""
    if not path.startswith("/"):
        raise StepFailed(f"cannot find root's authorized_keys file: {where.why()}")
    added = session.run(append_key_script(path, public_line(key)), root=True)
    if not added.ok:
        raise StepFailed(f"cannot add our key to {path} through sudo: {added.why()}")
    report.facts["root_authorized_keys"] = path
    report.actions.append(f"our key added to {path} through sudo ({session.user})")
    try:
        root = reconnect_as_root()
    except SshFailure as exc:
        report.facts["root"] = f"sudo ({session.user})"
        report.warnings.append(
            f"root login refused after adding our key ({exc.reason}): root commands go "
            f"through sudo as {session.user}"
        )
        return session
    report.facts["root"] = f"key added through sudo ({session.user})"
    return root
