"""Software on a machine: iproute2 >= 3.16, LXC, and pydistem itself in a virtualenv.

pydistem is installed from a wheel of *this* pydistem (built once from the source tree,
or given with ``--wheel``), copied over SFTP and ``pip install``ed into a fresh venv; its
dependencies come from the machine's package index, or, for machines without one, from
a wheelhouse copied along (``--wheelhouse``: pip then never goes online). A machine
whose venv already holds the same pydistem version is left alone (``--reinstall``).
"""

from __future__ import annotations

import importlib.metadata
import shlex
import subprocess
import sys
import tempfile
import threading
import tomllib
from pathlib import Path

import pydistem
from pydistem.bootstrap.checks import (
    IpVersion,
    backports_suites,
    parse_ip_version,
    plan_iproute2,
)
from pydistem.bootstrap.options import BootstrapOptions, MachinePaths
from pydistem.bootstrap.report import MachineReport, StepFailed
from pydistem.bootstrap.ssh import Result, Session

APT = "export DEBIAN_FRONTEND=noninteractive; "


def has_apt(session: Session) -> bool:
    return session.run("command -v apt-get >/dev/null").ok


def apt_why(r: Result) -> str:
    """apt's first error line (its last one is often only "Some index files failed")."""
    errors = [line.strip() for line in r.stderr.splitlines() if line.startswith("E:")]
    return errors[0] if errors else r.why()


def package_version(session: Session, package: str) -> str | None:
    """The installed Debian version of ``package`` (``6.1.0-3``), None when not installed
    or no dpkg."""
    fmt = shlex.quote("${Version} ${db:Status-Abbrev}")
    r = session.run(f"dpkg-query -W -f={fmt} {package} 2>/dev/null", root=True)
    version, _, status = r.stdout.strip().partition(" ")
    return version if r.ok and version and status.startswith("ii") else None


def ip_version(session: Session) -> IpVersion:
    return parse_ip_version(session.run("ip -V 2>&1", root=True).stdout)


def ensure_iproute2(session: Session, report: MachineReport, options: BootstrapOptions) -> None:
    """Check ``ip -V``; when older than 3.16, upgrade iproute2 through apt from the
    machine's suites, then from a configured backports suite, and check again.

    Raises StepFailed naming what was tried and what ``ip -V`` says afterwards."""
    version = ip_version(session)
    plan = plan_iproute2(version, has_apt(session))
    report.facts["iproute2"] = str(version)
    if plan.action == "ok":
        return
    if plan.action == "fail":
        raise StepFailed(plan.reason)
    if not options.install_packages:
        raise StepFailed(f"{plan.reason}; upgrade it, or drop --no-install")
    before = package_version(session, "iproute2")
    r = session.run(plan.command, root=True, timeout=900)
    if not r.ok:
        raise StepFailed(f"{plan.reason}; apt-get failed: {apt_why(r)}")
    after, how = ip_version(session), "apt-get"
    tried = []
    if not after.has_vxlan_dstport:
        policy = session.run("apt-cache policy iproute2", root=True).stdout
        for suite in backports_suites(policy):
            tried.append(suite)
            q = shlex.quote(suite)
            r = session.run(f"{APT}apt-get install -y -q -t {q} iproute2 >/dev/null", root=True)
            after = ip_version(session)
            if after.has_vxlan_dstport:
                how = f"apt-get -t {suite}"
                break
    package = package_version(session, "iproute2")
    report.facts["iproute2"] = str(after)
    if not after.has_vxlan_dstport:
        suites = f" nor in {', '.join(tried)}" if tried else ""
        if package is not None and package == before:
            raise StepFailed(
                f"{plan.reason}; apt-get found no iproute2 newer than {package} in this "
                f"machine's suites{suites}: add a suite that has one (e.g. "
                "bookworm-backports) and run bootstrap again"
            )
        where = session.run("command -v ip", root=True).stdout.strip() or "ip"
        raise StepFailed(
            f"{plan.reason}; apt-get installed iproute2 {package or '?'}, but {where} still "
            f"reports {after}: another ip comes first in PATH?"
        )
    change = f"package {before or 'none'} -> {package}, {how}"
    report.actions.append(f"iproute2 upgraded from {version} to {after} ({change})")


def ensure_lxc(session: Session, report: MachineReport, options: BootstrapOptions) -> None:
    """LXC's tools, installed through apt when missing. Without them only the ``netns``
    runtime works: a warning, not a failure."""
    if not session.run("command -v lxc-start >/dev/null", root=True).ok:
        consequence = "vnodes of runtime lxc cannot run here (runtime netns still works)"
        if not options.install_packages:
            report.warnings.append(f"LXC is not installed: {consequence}")
            return
        if not has_apt(session):
            report.warnings.append(f"LXC is not installed and there is no apt-get: {consequence}")
            return
        r = session.run(APT + "apt-get install -y -q lxc >/dev/null", root=True, timeout=900)
        if not r.ok:
            report.warnings.append(f"apt-get install lxc failed ({r.why()}): {consequence}")
            return
        report.actions.append("LXC installed (apt-get install lxc)")
    version = session.run("lxc-start --version", root=True)
    report.facts["lxc"] = version.stdout.strip() if version.ok else "?"


class WheelSource:
    """The pydistem wheel to copy to machines: ``path`` as given, or built once (on
    first need, thread-safe) from the source tree this pydistem runs from."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def get(self) -> Path:
        with self._lock:
            if self._path is None:
                self._path = self._build()
            if not self._path.is_file():
                raise StepFailed(f"wheel {self._path} does not exist")
            return self._path

    def _build(self) -> Path:
        """``pip wheel`` of the source tree; with this environment's build tools when
        they satisfy the tree's ``build-system.requires`` (no build isolation: no
        package index needed, e.g. on a frontend without Internet access)."""
        root = source_root()
        if root is None:
            raise StepFailed(
                "pydistem is not installed from a source tree here, so no wheel can be "
                "built: pass --wheel pydistem-VERSION-py3-none-any.whl"
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="pydistem-wheel-")
        isolation = ["--no-build-isolation"] if has_build_requirements(root) else []
        tmp = self._tmp.name
        r = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", tmp, root],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = sorted(Path(self._tmp.name).glob("pydistem-*.whl"))
        if r.returncode or not wheels:
            raise StepFailed(f"building the pydistem wheel failed: {r.stderr.strip()[-300:]}")
        return wheels[0]

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def has_build_requirements(root: str) -> bool:
    """Whether this environment holds every ``build-system.requires`` of ``root``'s
    pyproject.toml, in a version that satisfies it."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        return False
    try:
        build = tomllib.loads((Path(root) / "pyproject.toml").read_text())["build-system"]
        requires = [Requirement(r) for r in build["requires"]]
    except (OSError, KeyError, tomllib.TOMLDecodeError, InvalidRequirement):
        return False
    for req in requires:
        try:
            version = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            return False
        if not req.specifier.contains(version, prereleases=True):
            return False
    return True


def source_root() -> str | None:
    """The source tree (with setup.cfg naming pydistem) this pydistem runs from."""
    root = Path(pydistem.__file__).resolve().parent.parent
    cfg = root / "setup.cfg"
    if cfg.is_file() and "name = pydistem" in cfg.read_text():
        return str(root)
    return None


def installed_version(session: Session, paths: MachinePaths) -> str | None:
    probe = f"{shlex.quote(paths.python)} -c 'import pydistem; print(pydistem.__version__)'"
    r = session.run(f"{probe} 2>/dev/null", root=True)
    return r.stdout.strip() if r.ok and r.stdout.strip() else None


def ensure_pydistem(
    session: Session,
    report: MachineReport,
    options: BootstrapOptions,
    paths: MachinePaths,
    wheel: WheelSource,
) -> None:
    """pydistem of this version in ``paths.venv``; skipped when it is already there."""
    want = pydistem.__version__
    have = installed_version(session, paths)
    report.facts["venv"] = paths.venv
    if have == want and not options.reinstall:
        report.facts["pydistem"] = f"{have} (already installed)"
        return
    py = session.run("python3 -c 'import sys; print(sys.version_info >= (3, 11))'", root=True)
    if py.stdout.strip() != "True":
        raise StepFailed(f"pydistem needs python3 >= 3.11 ({py.why()})")
    venv = shlex.quote(paths.venv)
    fresh = not session.run(f"test -x {venv}/bin/pip", root=True).ok
    if fresh:
        r = session.run(f"python3 -m venv {venv}", root=True)
        if not r.ok and has_apt(session) and options.install_packages:
            session.run(APT + "apt-get install -y -q python3-venv >/dev/null", root=True)
            report.actions.append("python3-venv installed (apt-get)")
            r = session.run(f"rm -rf {venv}; python3 -m venv {venv}", root=True)
        if not r.ok:
            raise StepFailed(f"cannot create the virtualenv {paths.venv}: {r.why()}")
    local = wheel.get()
    found = [] if options.wheelhouse is None else sorted(options.wheelhouse.glob("*.whl"))
    shipped = [w for w in found if not w.name.startswith("pydistem-")]
    made = session.run("mktemp -d /tmp/pydistem-wheels-XXXXXX")
    if not made.ok:
        raise StepFailed(f"cannot make a temporary directory: {made.why()}")
    tmp = made.stdout.strip()
    try:
        for w in [local, *shipped]:
            session.put(w.read_bytes(), f"{tmp}/{w.name}")
        force = " --force-reinstall --no-deps" if have == want else ""
        offline = f" --no-index --find-links {shlex.quote(tmp)}" if options.wheelhouse else ""
        r = session.run(
            f"{venv}/bin/pip install -q --disable-pip-version-check{force}{offline} "
            f"{shlex.quote(f'{tmp}/{local.name}')}",
            root=True,
            timeout=900,
        )
    finally:
        session.run(f"rm -rf {shlex.quote(tmp)}", root=True)
    if not r.ok:
        raise StepFailed(f"pip install of {local.name} into {paths.venv} failed: {r.why()}")
    report.facts["pydistem"] = want
    source = f", dependencies from {len(shipped)} shipped wheels" if options.wheelhouse else ""
    report.actions.append(
        f"pydistem {want} installed into {paths.venv}"
        + (f" (was {have})" if have else " (new venv)" if fresh else "")
        + source
    )
