"""``g5k``: Grid'5000 through execo / execo_g5k, shaped like the testbed's checklist.

reserve = check site and cluster (reference REST API) -> ``oarsub`` on the site
frontend -> wait for the job with progress -> nodes -> g5k-subnets -> KaVLAN ->
kadeploy3 of an environment. prepare = root (kadeploy's key, or ``sudo-g5k`` on the
standard environment) -> bootstrap. release = ``oardel``. From outside Grid'5000 every
SSH connection (frontend and nodes) jumps through the access gateway. A failure after
the job exists deletes the job before raising: nothing stays reserved.

execo reads its own configuration (``~/.execo.conf.py``) at import; the API login and
password come from ``~/.python-grid5000.yaml``. See docs/adapters.md.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import shlex
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydistem.adapters.base import (
    Adapter,
    Capabilities,
    OnCreated,
    Options,
    Prepared,
    Reservation,
    ReservationStatus,
)
from pydistem.adapters.credentials import grid5000_credentials, redact
from pydistem.adapters.g5k_options import G5kOptions, walltime_seconds
from pydistem.adapters.prepare import prepare_machines, teardown_machines
from pydistem.errors import PydistemError, ReservationError, Unsupported, ValidationError
from pydistem.model.machines import Machine

T = TypeVar("T")
# execo_g5k's kadeploy regex for a KO node line, plus the reason kadeploy prints
_KO_LINE = re.compile(r"^(\S+\.grid5000\.fr)\s+\((.*)\)\s*$")
#: OAR states (text form) in which a job holds nothing any more
ENDED = ("Terminated", "Error")
STATES = {
    "Waiting": "pending", "Hold": "pending", "toLaunch": "pending", "Launching": "pending",
    "toAckReservation": "pending", "Running": "running", "Suspended": "running",
    "Resuming": "running", "Finishing": "running", "Terminated": "ended", "Error": "ended",
    "toError": "error",
}  # fmt: skip


class _KadeployLines:
    """Collects kadeploy3's output lines: progress, and the reason of each KO node."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress
        self.reasons: dict[str, str] = {}

    def handler(self) -> Any:
        from execo.process import ProcessOutputHandler

        outer = self

        class Handler(ProcessOutputHandler):  # type: ignore[misc]
            # execo's FrontendPrefixWrapper hands over one line at a time, without its
            # newline and never with eof: line buffering would glue them all together
            def read(self, process: Any, stream: Any, string: str, eof: bool, error: bool) -> None:
                for line in string.splitlines():
                    self.read_line(process, stream, line)

            def read_line(self, process: Any, stream: Any, string: str) -> None:
                # execo prefixes each line with the frontend: "rennes: The deployment..."
                line = re.sub(r"^[\w-]+: ", "", string.rstrip("\r\n"), count=1)
                m = _KO_LINE.match(line)
                if m:
                    outer.reasons[m.group(1)] = m.group(2)
                if line.startswith(("Performing", "End of", "Deployment #", "Launching")):
                    outer.progress(line.strip())

        return Handler()


class G5kAdapter(Adapter):
    name = "g5k"
    summary = "Grid'5000 through execo: OAR jobs, kadeploy3, g5k-subnets, KaVLAN"
    capabilities = Capabilities(
        bare_metal=True, vlans=True, routable_subnets=True, layer2=True, extend=True
    )
    Options = G5kOptions
    options: G5kOptions

    def __init__(self, options: Options, progress: Any = None) -> None:
        super().__init__(options, progress)
        self._ready = False
        self._creds = grid5000_credentials()

    # ------------------------------------------------------------------ execo setup

    def _execo(self) -> Any:
        """Import execo_g5k (reads ``~/.execo.conf.py``) and connect its REST API."""
        import execo.log
        import execo_g5k
        from execo_g5k import api_utils
        from execo_g5k.config import g5k_configuration

        if not self._ready:
            # execo logs every process (with its whole connection params) to stdout: keep
            # stdout for our output and let our messages, which carry what failed, speak
            execo.log.logger_handler.setStream(sys.stderr)
            execo.log.logger.setLevel(logging.ERROR)
            uri = self.options.api_uri or self._creds.uri or g5k_configuration["api_uri"]
            if self._creds.username and self._creds.password:
                api = api_utils.APIConnection(
                    base_uri=uri,
                    username=self._creds.username,
                    password=self._creds.password.reveal(),
                )
                if self._creds.verify_ssl is False:
                    g5k_configuration["api_verify_ssl_cert"] = False
            else:
                api = api_utils.APIConnection(base_uri=uri, username=False)
            api_utils._g5k_api = api
            self._api_uri = uri
            self._ready = True
        return execo_g5k

    @property
    def login(self) -> str | None:
        """The Grid'5000 login: ``user``, else the API username, else execo's setting."""
        if self.options.user:
            return self.options.user
        if self._creds.username:
            return self._creds.username
        from execo_g5k.config import default_frontend_connection_params

        user = default_frontend_connection_params.get("user")
        return str(user) if user else None

    def gateway(self) -> Machine | None:
        """The access gateway when run from outside Grid'5000 (``gateway: auto``)."""
        gw = self.options.gateway
        if gw == "none":
            return None
        if gw == "auto":
            if socket.getfqdn().endswith(".grid5000.fr"):
                return None
            gw = "access.grid5000.fr"
        return Machine.parse(gw, "testbed.gateway", default_user=self.login or "root")

    def _keyfile(self, params: dict[str, Any]) -> str | None:
        if self.options.key is not None:
            return str(self.options.key)
        return params.get("keyfile")

    def _proxy_options(self, base: dict[str, Any]) -> tuple[str, ...]:
        """``-o ProxyCommand=ssh ... -W %h:%p gateway`` with the same key and options."""
        gw = self.gateway()
        if gw is None:
            return ()
        from execo.config import make_default_connection_params

        opts = [
            o
            for o in (base.get("ssh_options") or make_default_connection_params()["ssh_options"])
            if o != "-tt"
        ]
        keyfile = self._keyfile(base)
        cmd = ["ssh", *opts]
        if keyfile:
            cmd += ["-i", keyfile]
        if gw.port != 22:
            cmd += ["-p", str(gw.port)]
        cmd += ["-W", "%h:%p", f"{gw.user}@{gw.host}"]
        return ("-o", "ProxyCommand=" + shlex.join(cmd))

    def frontend_params(self) -> dict[str, Any]:
        """Per-call connection params for the site frontend (execo's layering: its
        defaults, then ``default_frontend_connection_params``, then these)."""
        from execo.config import make_default_connection_params
        from execo_g5k.config import default_frontend_connection_params as base

        params: dict[str, Any] = {}
        if self.login and not base.get("user"):
            params["user"] = self.login
        if self.options.key is not None:
            params["keyfile"] = str(self.options.key)
        proxy = self._proxy_options(base)
        if proxy:
            ssh_options = base.get("ssh_options") or make_default_connection_params()["ssh_options"]
            params["ssh_options"] = tuple(ssh_options) + proxy
        return params

    def node_params(self, user: str = "root") -> dict[str, Any]:
        """Connection params for the nodes (execo's ``default_connection_params`` plus
        the user, the key and the gateway)."""
        from execo.config import default_connection_params as base
        from execo.config import make_default_connection_params

        params: dict[str, Any] = {"user": user}
        if self.options.key is not None:
            params["keyfile"] = str(self.options.key)
        proxy = self._proxy_options(base)
        if proxy:
            ssh_options = base.get("ssh_options") or make_default_connection_params()["ssh_options"]
            params["ssh_options"] = tuple(ssh_options) + proxy
        return params

    # ------------------------------------------------------------------ REST

    def _api(self, what: str, call: Callable[[], T]) -> T:
        """Call execo's REST helpers, retrying 5xx and connection errors with backoff."""
        from execo_g5k.api_utils import APIException

        tries = self.options.api_retries
        for attempt in range(1, tries + 1):
            try:
                return call()
            except APIException as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None)
                transient = status is None or status >= 500
                reason = f"HTTP {status}" if status else redact(str(exc.exception or exc))
                if not transient or attempt == tries:
                    raise ReservationError(
                        self.name,
                        f"Grid'5000 API {self._api_uri} failed to give {what}: {reason}"
                        + (f" (after {tries} tries)" if transient else ""),
                    ) from None
                delay = min(2 ** (attempt - 1), 8)
                self.progress.update(f"API answered {reason}; retrying in {delay}s")
                time.sleep(delay)
        raise AssertionError("unreachable")

    def resolve_site(self) -> str:
        """The site, checked against the reference API; the cluster must be there."""
        from execo_g5k import api_utils

        o = self.options
        self.progress.step(f"checking {o.cluster or o.site} in the Grid'5000 reference API")
        sites = self._api("the list of sites", api_utils.get_g5k_sites)
        if o.site is not None and o.site not in sites:
            raise ValidationError("testbed.site", f"{o.site!r} is not a site (sites: {sites})")
        if o.cluster is None:
            assert o.site is not None
            return o.site
        site = o.site
        if site is None:
            try:
                site = self._api(
                    "the cluster's site", lambda: api_utils.get_cluster_site(o.cluster)
                )
            except ValueError:
                raise ValidationError("testbed.cluster", f"{o.cluster!r} is no cluster") from None
            if site is None:
                raise ValidationError("testbed.cluster", f"{o.cluster!r} is no cluster")
        clusters = self._api(
            f"the clusters of {site}", lambda: api_utils.get_site_clusters(site, queues=None)
        )
        if o.cluster not in clusters:
            raise ValidationError(
                "testbed.cluster", f"{o.cluster!r} is not a cluster of {site} ({clusters})"
            )
        return site

    def hardware(self, fqdn: str) -> dict[str, Any]:
        """Cores, memory and cluster of a node from the reference API (cached by execo)."""
        from execo_g5k import api_utils

        try:
            attrs = self._api(
                f"the description of {fqdn}", lambda: api_utils.get_host_attributes(fqdn)
            )
        except KeyError:
            return {}
        arch = attrs.get("architecture") or {}
        return {
            "cluster": api_utils.get_host_cluster(fqdn),
            "cores": arch.get("nb_cores"),
            "threads": arch.get("nb_threads"),
            "memory": (attrs.get("main_memory") or {}).get("ram_size"),
        }

    # ------------------------------------------------------------------ OAR

    def submission(self) -> Any:
        """The OarSubmission this configuration asks for."""
        from execo_g5k import OarSubmission

        o = self.options
        resources = []
        if o.subnets:
            resources.append(o.subnets)
        if o.kavlan:
            resources.append(f"{{type='{o.kavlan}'}}/vlan=1")
        if o.resources:
            resources.append(o.resources)
        elif o.cluster:
            resources.append(f"{{cluster='{o.cluster}'}}/nodes={o.nodes}")
        else:
            resources.append(f"nodes={o.nodes}")
        types = list(o.job_types)
        if o.deploys and "deploy" not in types:
            types.append("deploy")
        return OarSubmission(
            resources=resources,
            walltime=walltime_seconds(o.walltime),
            job_type=types or None,
            sql_properties=o.properties,
            queue=o.queue,
            reservation_date=o.reservation,
            name=o.name or f"pydistem-{secrets.token_hex(3)}",
        )

    def _failed(self, what: str, exc: BaseException) -> ReservationError:
        """A ReservationError from an execo failure, with what the frontend said."""
        from execo.exception import ProcessesFailed

        if isinstance(exc, ProcessesFailed):
            details = []
            for p in exc.processes:
                text = f"{p.stdout or ''}\n{p.stderr or ''}"
                said = [ln.strip() for ln in text.splitlines() if ln.strip()]
                why = (
                    "timed out"
                    if p.timeouted
                    else p.error_reason
                    if p.error
                    else f"exit status {p.exit_code if p.exit_code < 256 else p.exit_code >> 8}"
                )
                details.append(f"{why}: {' / '.join(said[-4:]) or 'no output'}")
            return ReservationError(self.name, f"{what} failed ({'; '.join(details)})")
        return ReservationError(self.name, f"{what} failed: {type(exc).__name__}: {exc}")

    def submit(self, site: str) -> tuple[int, str]:
        """``oarsub`` on the site's frontend; (job id, job name). ReservationError with
        the frontend's message when OAR refuses."""
        from execo.exception import ProcessesFailed
        from execo_g5k import oarsub

        spec = self.submission()
        self.progress.step(f"submitting an OAR job to {site} ({', '.join(spec.resources)})")
        try:
            [(job_id, _)] = oarsub([(spec, site)], self.frontend_params(), abort_on_error=True)
        except ProcessesFailed as exc:
            raise self._failed(f"oarsub on {site}", exc) from None
        if job_id is None:
            raise ReservationError(self.name, f"oarsub on {site} printed no OAR_JOB_ID")
        return int(job_id), str(spec.name)

    def job_info(self, site: str, job_id: int) -> dict[str, Any]:
        from execo_g5k import get_oar_job_info

        return dict(get_oar_job_info(job_id, site, self.frontend_params(), nolog_exit_code=True))

    def wait_running(self, site: str, job_id: int) -> None:
        """Wait (with progress) until the job runs; ReservationError if it does not
        within ``wait_timeout`` or ends first."""
        from execo_g5k import wait_oar_job_start

        self.progress.step(f"waiting for OAR job {job_id} on {site}")

        def predicted(ts: float | None) -> None:
            if ts:
                when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))
                self.progress.update(f"OAR job {job_id}: start predicted at {when}")

        ok = wait_oar_job_start(
            job_id,
            site,
            self.frontend_params(),
            timeout=self.options.wait_timeout,
            prediction_callback=predicted,
        )
        if ok:
            return
        state = self.job_info(site, job_id).get("state", "unknown")
        if state in ENDED:
            raise ReservationError(self.name, f"OAR job {job_id} ended ({state}) before it ran")
        raise ReservationError(
            self.name,
            f"OAR job {job_id} did not start within {self.options.wait_timeout:g}s "
            f"(state {state}); it was deleted",
        )

    def job_nodes(self, site: str, job_id: int) -> list[str]:
        from execo_g5k import get_oar_job_nodes

        return sorted(h.address for h in get_oar_job_nodes(job_id, site, self.frontend_params()))

    def frontend_command(self, site: str, cmd: str) -> tuple[bool, list[str]]:
        """Run ``cmd`` on the site frontend as execo does (SSH with a pty); (ok, lines)."""
        from execo import SshProcess
        from execo_g5k.utils import get_frontend_host

        p = SshProcess(cmd, get_frontend_host(site), connection_params=self._frontend_all())
        p.pty = True
        p.nolog_exit_code = True
        p.run()
        lines = [ln.strip() for ln in (p.stdout or "").replace("\r", "").splitlines()]
        return bool(p.ok), [ln for ln in lines if ln]

    def job_subnets(self, site: str, job_id: int) -> dict[str, Any]:
        """The reserved subnets, from ``g5k-subnets -a -j JOB`` (one line per subnet, 7
        TAB-separated fields: prefix, broadcast, netmask, gateway, network, DNS name, DNS
        address; the last five are the site's). Parsed here rather than by execo's
        ``get_oar_job_subnets``, which drops the site parameters when there are two
        subnets or more. Each requested block (``slash_21=1``: one /21) is one CIDR."""
        cmd = f"g5k-subnets -a -j {job_id}"
        ok, lines = self.frontend_command(site, cmd)
        rows = [ln.split("\t") for ln in lines if ln.count("\t") == 6]
        if not ok or not rows:
            said = " / ".join(lines[-3:]) or "no output"
            raise ReservationError(self.name, f"{cmd} on {site} gave no subnet ({said})")
        try:
            prefixes = [ipaddress.IPv4Network(r[0]) for r in rows]
        except ValueError as exc:
            raise ReservationError(self.name, f"{cmd} on {site}: {exc}") from None
        request = self.options.subnet_request
        plen = request[0] if request else 22
        blocks: list[ipaddress.IPv4Network] = []
        for net in prefixes:
            block = net if net.prefixlen <= plen else net.supernet(new_prefix=plen)
            if block not in blocks:
                blocks.append(block)
        if request and len(blocks) != request[1]:
            raise ReservationError(
                self.name,
                f"{cmd} on {site} lists {len(blocks)} /{plen} block(s) "
                f"({', '.join(map(str, blocks))}); {self.options.subnets} asked for {request[1]}",
            )
        _prefix, broadcast, netmask, gateway, network, dns_name, dns_ip = rows[0]
        return {
            "cidrs": [str(b) for b in blocks],
            "addresses": sum(b.num_addresses - 2 for b in blocks),
            "broadcast": broadcast,
            "netmask": netmask,
            "gateway": gateway,
            "network": network,
            "dns_hostname": dns_name,
            "dns_ip": dns_ip,
        }

    def planned_subnets(self) -> list[int]:
        request = self.options.subnet_request
        return [request[0]] * request[1] if request else []

    def reserved_subnets(self, reservation: Reservation) -> list[ipaddress.IPv4Network]:
        cidrs = (reservation.data.get("subnets") or {}).get("cidrs") or []
        return [ipaddress.IPv4Network(c) for c in cidrs]

    def subnets_gateway(self, reservation: Reservation) -> str | None:
        """The site gateway ``g5k-subnets -a`` printed (the same for every subnet)."""
        gateway = (reservation.data.get("subnets") or {}).get("gateway")
        return str(gateway) if gateway else None

    def job_vlan(self, site: str, job_id: int) -> int | None:
        from execo_g5k import get_oar_job_kavlan

        vlans = get_oar_job_kavlan(job_id, site, self.frontend_params())
        return int(vlans[0]) if vlans else None

    def check_vlan(self, site: str, job_id: int, vlan: int, fqdns: list[str]) -> None:
        """``kavlan -l -j JOB`` must list every node in the VLAN (kadeploy3 ``--vlan``
        moved them), under its ``-kavlan-N`` name; ReservationError naming those left out."""
        from execo_g5k.utils import get_kavlan_host_name

        cmd = f"kavlan -l -j {job_id}"
        ok, lines = self.frontend_command(site, cmd)
        if not ok:
            raise ReservationError(self.name, f"{cmd} on {site}: {' / '.join(lines)}")
        missing = [f for f in fqdns if get_kavlan_host_name(f, vlan) not in lines]
        if missing:
            raise ReservationError(
                self.name, f"node(s) not in KaVLAN {vlan} after kadeploy3: {', '.join(missing)}"
            )
        self.progress.update(f"KaVLAN {vlan} holds {len(fqdns)} node(s)")

    def delete_job(self, site: str, job_id: int) -> None:
        """``oardel`` (execo ignores its errors: a dead job is no error)."""
        from execo_g5k import oardel

        oardel([(job_id, site)], self.frontend_params())

    # ------------------------------------------------------------------ kadeploy

    def deploy(self, site: str, fqdns: list[str], vlan: int | None) -> None:
        """kadeploy3 the environment on every node; ReservationError naming the nodes
        that failed (kadeploy's report is trusted; prepare checks root SSH anyway)."""
        from execo import Host
        from execo_g5k import Deployment, deploy

        o = self.options
        env = o.environment or o.environment_file
        self.progress.step(f"kadeploy3 {env} on {len(fqdns)} node(s) (takes minutes)")
        lines = _KadeployLines(self.progress.update)
        deployment = Deployment(
            hosts=[Host(f) for f in fqdns],
            env_name=o.environment,
            env_file=o.environment_file,
            vlan=vlan,
        )
        deployed, _undeployed = deploy(
            deployment,
            check_deployed_command=False,
            frontend_connection_params=self.frontend_params(),
            deploy_timeout=o.deploy_timeout,
            stdout_handlers=[lines.handler()],
        )
        ok = {h.address if hasattr(h, "address") else str(h) for h in deployed}
        failed = sorted(set(fqdns) - ok)
        if failed:
            why = ", ".join(f"{n} ({lines.reasons.get(n, 'no report')})" for n in failed)
            raise ReservationError(self.name, f"kadeploy3 {env} failed on {why}")

    # ------------------------------------------------------------------ the contract

    def reserve(self, on_created: OnCreated | None = None) -> Reservation:
        """Reserve, wait, deploy. On any failure once the job exists, the job is
        deleted before the error is raised."""
        self._execo()
        site = self.resolve_site()
        job_id, job_name = self.submit(site)
        res = Reservation(
            testbed=self.name,
            id=str(job_id),
            options=self.options.model_dump(mode="json", exclude_unset=True),
            data={"site": site, "job": job_id, "name": job_name},
        )
        if on_created:
            on_created(res)
        try:
            self._complete(res, site, job_id)
        except BaseException as exc:
            self.progress.step(f"deleting OAR job {job_id} on {site} after the failure")
            self.delete_job(site, job_id)
            res.data["deleted"] = True
            if isinstance(exc, PydistemError | KeyboardInterrupt | SystemExit):
                raise
            raise self._failed(f"OAR job {job_id} on {site}", exc) from exc
        return res

    def _complete(self, res: Reservation, site: str, job_id: int) -> None:
        self.wait_running(site, job_id)
        info = self.job_info(site, job_id)
        if info.get("start_date") and info.get("walltime"):
            res.expires_at = float(info["start_date"]) + float(info["walltime"])
        self.progress.step(f"OAR job {job_id} is running; listing its resources")
        fqdns = self.job_nodes(site, job_id)
        if not fqdns:
            raise ReservationError(self.name, f"OAR job {job_id} holds no node")
        res.data["nodes"] = fqdns
        if self.options.subnets:
            res.data["subnets"] = self.job_subnets(site, job_id)
        vlan = self.job_vlan(site, job_id) if self.options.kavlan else None
        if self.options.kavlan and vlan is None:
            raise ReservationError(self.name, f"OAR job {job_id} has no KaVLAN")
        res.data["vlan"] = vlan
        if self.options.deploys:
            self.deploy(site, fqdns, vlan)
        from execo_g5k.utils import get_kavlan_host_name

        if vlan:
            self.check_vlan(site, job_id, vlan, fqdns)
        gateway = self.gateway()
        user = "root" if self.options.deploys else (self.login or "root")
        res.machines = [
            Machine(
                host=get_kavlan_host_name(f, vlan) if vlan else f,
                user=user,
                gateway=gateway,
                site=site,
                hardware=self.hardware(f),
            )
            for f in fqdns
        ]

    def status(self, reservation: Reservation) -> ReservationStatus:
        self._execo()
        site, job_id = reservation.data["site"], int(reservation.id)
        info = self.job_info(site, job_id)
        state = info.get("state")
        if state is None:
            return ReservationStatus("error", f"oarstat on {site} gave no state for {job_id}")
        return ReservationStatus(STATES.get(state, "pending"), state, reservation.expires_at)

    def extend(self, reservation: Reservation, seconds: int) -> Reservation:
        """``oarwalltime JOB +H:M:S`` on the frontend (OAR may refuse: ReservationError)."""
        from execo_g5k.oar import format_oar_duration

        self._execo()
        site, job_id = reservation.data["site"], int(reservation.id)
        cmd = f"oarwalltime {job_id} +{format_oar_duration(seconds)}"
        self.progress.step(cmd)
        ok, lines = self.frontend_command(site, cmd)
        if not ok or any("refused" in ln.lower() for ln in lines):
            raise ReservationError(self.name, f"{cmd} on {site}: {' / '.join(lines)}")
        if reservation.expires_at:
            reservation.expires_at += seconds
        return reservation

    def _frontend_all(self) -> dict[str, Any]:
        from execo.config import make_connection_params
        from execo_g5k.config import default_frontend_connection_params

        return make_connection_params(self.frontend_params(), default_frontend_connection_params)

    def ensure_root(self, reservation: Reservation) -> None:
        """Root SSH on the nodes: given by kadeploy's ``-k`` on a deployed environment;
        on the standard environment, ``sudo-g5k`` adds the login's keys to root's."""
        if self.options.deploys:
            return
        from execo import Remote

        self.progress.step("root access through sudo-g5k (standard environment)")
        hosts = [m.host for m in reservation.machines]
        cmd = "cat ~/.ssh/authorized_keys | sudo-g5k tee -a /root/.ssh/authorized_keys >/dev/null"
        remote = Remote(cmd, hosts, connection_params=self.node_params(self.login or "root"))
        remote.run()
        if not remote.ok:
            failed = []
            for p in remote.processes:
                if not p.ok:
                    said = [ln.strip() for ln in (p.stdout or "").splitlines() if ln.strip()]
                    failed.append(f"{p.host.address} ({' / '.join(said[-3:]) or p.error_reason})")
            raise ReservationError(self.name, f"sudo-g5k failed on {', '.join(failed)}")
        reservation.machines = [
            Machine(m.host, m.port, "root", m.gateway, m.site, m.hardware)
            for m in reservation.machines
        ]

    def ssh_key(self) -> Path | None:
        """The private key for nodes: ``key``, else execo's node or frontend keyfile."""
        if self.options.key is not None:
            return self.options.key
        from execo.config import default_connection_params
        from execo_g5k.config import default_frontend_connection_params

        for params in (default_connection_params, default_frontend_connection_params):
            if params.get("keyfile"):
                return Path(params["keyfile"])
        return None

    def prepare(self, reservation: Reservation) -> Prepared:
        """Root access, then the bootstrap on every node (idempotent)."""
        self._execo()
        if not reservation.machines:
            raise Unsupported(f"reservation {reservation.key} has no machine to prepare")
        self.ensure_root(reservation)
        prepared = prepare_machines(
            reservation.machines, self.ssh_key(), self.options.bootstrap, self.progress
        )
        reservation.data["prepared"] = True
        return prepared

    def release(self, reservation: Reservation) -> None:
        """``oardel`` the job, then check that OAR let it go. Idempotent."""
        self._execo()
        site, job_id = reservation.data["site"], int(reservation.id)
        if reservation.data.get("prepared"):
            # stop what runs on the nodes first (the job's end would kill it anyway,
            # but not what it made outside the nodes' disks); failures do not stop oardel
            teardown_machines(
                reservation.machines, self.ssh_key(), self.options.bootstrap, self.progress
            )
            reservation.data["prepared"] = False
        self.progress.step(f"deleting OAR job {job_id} on {site}")
        self.delete_job(site, job_id)
        from execo_g5k.config import g5k_configuration

        deadline = time.monotonic() + 60  # OAR deletes asynchronously ("in the near future")
        while True:
            state = self.job_info(site, job_id).get("state")
            if state is None or state in (*ENDED, "Finishing", "toError"):
                return
            if time.monotonic() > deadline:
                raise ReservationError(
                    self.name, f"OAR job {job_id} on {site} is still {state} 60s after oardel"
                )
            self.progress.update(f"OAR job {job_id} is {state}; waiting for the deletion")
            time.sleep(float(g5k_configuration["tiny_polling_interval"]))
