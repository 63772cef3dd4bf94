"""Bootstrap and teardown of a list of machines, all in parallel.

``prepare`` takes every machine through connect → root → kernel → iproute2 → lxc →
pydistem in its own thread; then (a barrier) probes every uplink for foreign MACs in
one round, picks the coordinator (the first machine still standing), shares one token,
starts distemd everywhere and inits every pnode on the coordinator, keyed by
:attr:`Machine.id`, with its kernel features and uplink verdict. A failed machine
is reported and the others go on, unless ``strict``: then no distemd is left running.

``teardown`` is the other end: the coordinator quits the platform (every vnode,
vnetwork and pnode cleaned), every distemd is stopped by its pid, and whatever an agent
that had died journaled is cleaned from its journal.
"""

from __future__ import annotations

import json
import secrets
import shlex
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import paramiko

from pydistem.bootstrap import daemons, uplink
from pydistem.bootstrap.checks import FEATURE_PROBE, parse_features
from pydistem.bootstrap.install import WheelSource, ensure_iproute2, ensure_lxc, ensure_pydistem
from pydistem.bootstrap.options import BootstrapOptions, MachinePaths
from pydistem.bootstrap.report import PHASES, BootstrapReport, MachineReport, StepFailed
from pydistem.bootstrap.root import ensure_root
from pydistem.bootstrap.ssh import Gateways, Session, SshFailure, load_key
from pydistem.errors import ValidationError
from pydistem.model.machines import Machine

#: on_event(machine report, phase, status): status is start | done | failed | skipped
EventHook = Callable[[MachineReport, str, str], None]


def _no_event(report: MachineReport, phase: str, status: str) -> None:
    pass


class _Run:
    """The shared state of one prepare or teardown: key, gateways, sessions."""

    def __init__(
        self, machines: Sequence[Machine], options: BootstrapOptions, on_event: EventHook | None
    ) -> None:
        if not machines:
            raise ValidationError("machines", "no machine to prepare")
        ids = [m.id for m in machines]
        dup = next((i for i in ids if ids.count(i) > 1), None)
        if dup:
            raise ValidationError("machines", f"{dup} is listed twice")
        if options.wheelhouse is not None and not options.wheelhouse.is_dir():
            raise ValidationError("wheelhouse", f"{options.wheelhouse} is not a directory")
        self.options = options
        self.paths = {m.id: options.for_machine(m, i) for i, m in enumerate(machines, 1)}
        try:
            self.key: paramiko.PKey = load_key(options.key)
        except SshFailure as exc:
            raise ValidationError("key", exc.reason) from None
        self.reports = [MachineReport(m, i) for i, m in enumerate(machines, 1)]
        self.emit = on_event or _no_event
        self.gateways = Gateways(self.key, options.connect_timeout, options.accept_new_host_keys)
        self.sessions: dict[str, Session] = {}

    def connect(self, machine: Machine) -> Session:
        return Session(
            machine,
            self.key,
            timeout=self.options.connect_timeout,
            gateways=self.gateways,
            accept_new=self.options.accept_new_host_keys,
        )

    def phase(self, report: MachineReport, name: str, step: Callable[[], None]) -> bool:
        """Run one phase of one machine; False (and the rest skipped) when it failed."""
        if report.state == "failed":
            self.emit(report, name, "skipped")
            return False
        report.phase = name
        self.emit(report, name, "start")
        try:
            step()
        except StepFailed as exc:
            report.fail(name, exc.reason)
            self.emit(report, name, "failed")
            return False
        self.emit(report, name, "done")
        return True

    def skip_rest(self, report: MachineReport, after: str) -> None:
        names = list(PHASES)
        for name in names[names.index(after) + 1 :]:
            self.emit(report, name, "skipped")

    def pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(min(32, len(self.reports)), thread_name_prefix="bootstrap")

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()
        self.sessions.clear()
        self.gateways.close()

    # ---------------------------------------------------------------- connect + root
    def login(self, report: MachineReport) -> bool:
        """Phases connect and root: a session that can run root commands."""

        def connect() -> None:
            session = self.connect(report.machine)
            self.sessions[report.id] = session
            r = session.run("hostname")
            report.facts["hostname"] = r.stdout.strip() if r.ok else None

        def root() -> None:
            session = self.sessions[report.id]
            as_root = replace(report.machine, user="root")
            got = ensure_root(session, self.key, report, lambda: self.connect(as_root))
            if got is not session:
                session.close()
                self.sessions[report.id] = got

        return self.phase(report, "connect", connect) and self.phase(report, "root", root)


# --------------------------------------------------------------------------- prepare


def prepare(
    machines: Sequence[Machine],
    options: BootstrapOptions | None = None,
    on_event: EventHook | None = None,
) -> BootstrapReport:
    """Prepare ``machines`` as pnodes: root access, checks, software, distemd, pnode
    init. The first machine still standing becomes the coordinator.

    Idempotent: a second run finds everything in place and changes nothing (a distemd
    already running with the same command line and token is kept). Raises
    ValidationError for bad options (nothing is touched then); every failure on a
    machine is in its :class:`MachineReport` instead.
    """
    options = options or BootstrapOptions()
    run = _Run(machines, options, on_event)
    wheel = WheelSource(options.wheel)
    report = BootstrapReport(run.reports, strict=options.strict)
    try:
        with run.pool() as pool:
            list(pool.map(lambda r: _prepare_machine(run, r, wheel), run.reports))
        standing = [r for r in run.reports if r.state != "failed"]
        if options.strict and len(standing) < len(run.reports):
            bad = ", ".join(r.id for r in run.reports if r.state == "failed")
            for r in standing:
                r.state, r.reason = "skipped", f"--strict: not started because {bad} failed"
                run.skip_rest(r, "pydistem")
            return report
        if not standing:
            return report
        _probe_uplinks(run, standing)
        _start_daemons(run, report, standing)
        if options.strict and any(r.state != "ready" for r in run.reports):
            _stop_started(run, report)
        return report
    finally:
        wheel.close()
        run.close()


def _prepare_machine(run: _Run, report: MachineReport, wheel: WheelSource) -> None:
    options, paths = run.options, run.paths[report.id]

    def session() -> Session:
        return run.sessions[report.id]

    def kernel() -> None:
        r = session().run(FEATURE_PROBE, root=True)
        features = parse_features(r.stdout)
        report.facts["features"] = features.present
        report.warnings.extend(features.warnings)
        if features.errors:
            raise StepFailed("; ".join(features.errors))

    ok = run.login(report)
    ok = ok and run.phase(report, "kernel", kernel)
    ok = ok and run.phase(report, "iproute2", lambda: ensure_iproute2(session(), report, options))
    ok = ok and run.phase(report, "lxc", lambda: ensure_lxc(session(), report, options))
    ok = ok and run.phase(
        report, "pydistem", lambda: ensure_pydistem(session(), report, options, paths, wheel)
    )
    if not ok:
        run.skip_rest(report, report.phase)


def _probe_uplinks(run: _Run, standing: list[MachineReport]) -> None:
    """Phase uplink: one foreign-MAC probe round over every standing machine. Its
    verdict is a fact and a feature (``l2:<uplink>``), never a failure: a machine whose
    uplink drops foreign MACs still serves VXLAN and routed vnetworks."""
    found = uplink.probe([(r.id, run.sessions[r.id], run.paths[r.id]) for r in standing])
    verdicts = uplink.judge(found)

    def record(r: MachineReport) -> None:
        v = verdicts[r.id]
        r.facts["uplink"] = {
            "interface": v.interface,
            "foreign_macs": v.carries_foreign_macs,
            "heard": sorted(found[r.id].heard),
            "why": v.why,
        }
        if v.interface and v.carries_foreign_macs is not None:
            features = r.facts.setdefault("features", {})
            features[f"l2:{v.interface}"] = v.carries_foreign_macs
        if v.carries_foreign_macs is False:
            r.warnings.append(
                f"uplink {v.interface} {v.why}: classic vnetworks on {v.interface} cannot "
                "reach vnodes here (a NIC without promiscuous mode, as Xen/KVM virtual NICs, "
                "or no L2 segment shared with the other machines); VXLAN and routed "
                "vnetworks work (network_type vxlan or auto)"
            )
        elif v.carries_foreign_macs is None and found[r.id].error is not None:
            r.warnings.append(f"{v.why}; the coordinator probes again for classic vnetworks")

    for r in standing:
        run.phase(r, "uplink", lambda r=r: record(r))


def _start_daemons(run: _Run, report: BootstrapReport, standing: list[MachineReport]) -> None:
    options = run.options
    coordinator = standing[0]
    token = daemons.read_token(run.sessions[coordinator.id], run.paths[coordinator.id])
    token = token or secrets.token_urlsafe(32)
    report.token = token
    addresses: dict[str, str] = {}
    seen: dict[str, str] = {}

    def one(r: MachineReport) -> None:
        session, paths = run.sessions[r.id], run.paths[r.id]

        def distemd() -> None:
            address = daemons.ssh_server_address(session)
            r.facts["address"] = address
            is_coord = r is coordinator
            port = options.coordinator_port if is_coord else options.agent_port
            other = seen.setdefault(f"{address}:{port}", r.id)
            if other != r.id:
                raise StepFailed(f"it is the host {other} already is ({address}): listed twice?")
            argv = daemons.distemd_argv(
                paths, options, address, coordinator_id=r.id if is_coord else None
            )
            r.role = "coordinator" if is_coord else "agent"
            token_changed = daemons.write_token(session, paths, token)
            found = daemons.running(session, paths)
            if found and not token_changed and found[1].endswith(" ".join(argv)):
                r.facts["distemd"] = f"pid {found[0]} (already running)"
            else:
                if found:
                    daemons.stop(session, paths)
                    r.actions.append(f"distemd pid {found[0]} stopped (other options or token)")
                path = "/api/v1/health" if is_coord else "/api/v1/agent/health"
                url = f"http://{daemons.url_host(address)}:{port}{path}"
                pid = daemons.start(session, paths, argv, url, options.daemon_timeout)
                r.facts["distemd"] = f"pid {pid}"
                r.actions.append(f"distemd started ({r.role}, pid {pid})")
            addresses[r.id] = address

        if not run.phase(r, "distemd", distemd):
            run.skip_rest(r, "distemd")

    with run.pool() as pool:
        list(pool.map(one, standing))
    if coordinator.state == "failed":
        for r in standing[1:]:
            if r.state != "failed":
                r.fail("pnode", f"the coordinator {coordinator.id} failed to start")
                run.emit(r, "pnode", "failed")
        return
    address = addresses[coordinator.id]
    paths = run.paths[coordinator.id]
    report.coordinator = coordinator.id
    report.url = f"http://{daemons.url_host(address)}:{options.coordinator_port}"
    report.token_file = paths.token_file
    _init_pnodes(run, report, [r for r in standing if r.state != "failed"], addresses)


def _init_pnodes(
    run: _Run, report: BootstrapReport, ready: list[MachineReport], addresses: dict[str, str]
) -> None:
    """Every pnode, keyed by Machine.id, inited on the coordinator (over its SSH)."""
    coordinator = run.reports[[r.id for r in run.reports].index(report.coordinator or "")]
    session, paths = run.sessions[coordinator.id], run.paths[coordinator.id]
    targets = [
        {
            "id": r.id,
            "address": addresses[r.id],
            "port": run.options.agent_port,
            "features": r.facts.get("features", {}),
        }
        for r in ready
    ]
    for r in ready:
        run.emit(r, "pnode", "start")
    res = session.run(
        f"{shlex.quote(paths.python)} -m pydistem.bootstrap.remote init-pnodes "
        f"{shlex.quote(report.url or '')} {shlex.quote(paths.token_file)}",
        root=True,
        stdin=json.dumps(targets),
        timeout=600,
    )
    try:
        outcome: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        outcome = {"error": res.why()}
    for r in ready:
        r.phase = "pnode"
        error = outcome.get(r.id, outcome.get("error", "not in the coordinator's answer"))
        if error:
            r.fail("pnode", f"pnode init on the coordinator: {error}")
            run.emit(r, "pnode", "failed")
        else:
            r.state = "ready"
            run.emit(r, "pnode", "done")


def _stop_started(run: _Run, report: BootstrapReport) -> None:
    """--strict after a failure: stop every distemd this run left, so nothing runs."""
    bad = ", ".join(r.id for r in run.reports if r.state == "failed")

    def one(r: MachineReport) -> None:
        session = run.sessions.get(r.id)
        if session is None or r.role is None:
            return
        try:
            pid = daemons.stop(session, run.paths[r.id])
        except StepFailed:
            return
        if pid:
            r.actions.append(f"distemd pid {pid} stopped again (--strict)")
        if r.state == "ready":
            r.state, r.reason = "skipped", f"--strict: stopped because {bad} failed"

    with run.pool() as pool:
        list(pool.map(one, run.reports))
    report.coordinator = report.url = None


# --------------------------------------------------------------------------- teardown


@dataclass
class TeardownReport:
    machines: list[MachineReport]
    quit: dict[str, Any] = field(default_factory=dict)  # the coordinator's quit answer

    @property
    def ok(self) -> bool:
        return all(m.state == "ready" for m in self.machines)


#: teardown's phases (progress bars), as PHASES for prepare
TEARDOWN_PHASES: dict[str, str] = {
    "connect": "SSH connection",
    "root": "root access",
    "quit": "platform removed",
    "stop": "distemd stopped",
    "clean": "journal cleaned",
}


def teardown(
    machines: Sequence[Machine],
    options: BootstrapOptions | None = None,
    on_event: EventHook | None = None,
) -> TeardownReport:
    """Leave nothing on any machine: quit the platform on the coordinator, stop every
    distemd by pid, clean each agent's journal (what a killed agent left), forget the
    coordinator's state. Idempotent; a machine that cannot be reached is reported."""
    options = options or BootstrapOptions()
    run = _Run(machines, options, on_event)
    result = TeardownReport(run.reports)
    try:
        with run.pool() as pool:
            list(pool.map(run.login, run.reports))
        reachable = [r for r in run.reports if r.state != "failed"]
        coordinator = _find_coordinator(run, reachable)
        for r in reachable:
            run.phase(r, "quit", lambda r=r: _quit_on(run, r, coordinator, result))

        def finish(r: MachineReport) -> None:
            session, paths = run.sessions[r.id], run.paths[r.id]

            def stop() -> None:
                pid = daemons.stop(session, paths)
                if pid:
                    r.actions.append(f"distemd pid {pid} stopped")

            def clean() -> None:
                _clean_journal(session, paths, r)

            if run.phase(r, "stop", stop) and run.phase(r, "clean", clean):
                r.state = "ready"

        with run.pool() as pool:
            list(pool.map(finish, reachable))
        for r in run.reports:
            if r.state == "failed":
                for name in TEARDOWN_PHASES:
                    if name not in ("connect", "root"):
                        run.emit(r, name, "skipped")
        return result
    finally:
        run.close()


def _find_coordinator(run: _Run, reachable: list[MachineReport]) -> MachineReport | None:
    for r in reachable:
        found = daemons.running(run.sessions[r.id], run.paths[r.id])
        if found and " -d " in f" {found[1]} ":
            argv = found[1].split()
            r.facts["url"] = "http://{}:{}".format(
                daemons.url_host(argv[argv.index("--bind") + 1]),
                argv[argv.index("--port") + 1],
            )
            return r
    return None


def _quit_on(
    run: _Run,
    r: MachineReport,
    coordinator: MachineReport | None,
    result: TeardownReport,
) -> None:
    if r is not coordinator:
        return
    paths = run.paths[r.id]
    res = run.sessions[r.id].run(
        f"{shlex.quote(paths.python)} -m pydistem.bootstrap.remote quit "
        f"{shlex.quote(r.facts['url'])} {shlex.quote(paths.token_file)}",
        root=True,
        timeout=900,
    )
    try:
        result.quit = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise StepFailed(f"quit on the coordinator failed: {res.why()}") from None
    if "error" in result.quit:
        raise StepFailed(f"quit on the coordinator failed: {result.quit['error']}")
    r.actions.append("platform quit (every vnode and vnetwork removed, pnodes cleaned)")


def _clean_journal(session: Session, paths: MachinePaths, r: MachineReport) -> None:
    sd = shlex.quote(paths.state_dir)
    res = session.run(
        f"[ -x {shlex.quote(paths.python)} ] || exit 0; "
        f"{shlex.quote(paths.python)} -m pydistem.bootstrap.remote clean {sd} {paths.tag}",
        root=True,
        timeout=600,
    )
    out = res.stdout.strip().splitlines()
    try:
        data = json.loads(out[-1]) if out else {"removed": [], "failed": {}}
    except ValueError:
        raise StepFailed(f"cleaning {paths.state_dir} failed: {res.why()}") from None
    if "error" in data or data.get("failed"):
        raise StepFailed(f"cleaning {paths.state_dir} left: {data.get('failed') or data}")
    if data.get("removed"):
        r.actions.append(f"{len(data['removed'])} journaled kernel objects removed")
    session.run(f"rm -f {sd}/coordinator.sqlite {sd}/coordinator.sqlite-*", root=True)
