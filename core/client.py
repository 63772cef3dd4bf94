"""The Python client of a pydistem coordinator (REST, native API ``/api/v1``).

Method names and argument shapes follow the Ruby Distem client (``vnetwork_create``,
``vnodes_create``, ``vnodes_start``, ``wait_vnodes``, ``vnode_execute``...), so a Ruby
Distem script ports line by line. Errors come back as the typed leaves of
:mod:`pydistem.errors`, carrying the server's message, field and reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pydistem import errors
from pydistem.client_limits import LimitsCalls
from pydistem.errors import PydistemError, ValidationError
from pydistem.events.client import EventsMixin
from pydistem.model.platform_file import Platform, load_platform

DEFAULT_URL = "http://127.0.0.1:4567"
DEFAULT_TOKEN_FILE = "/var/lib/pydistem/token"
API_PREFIX = "/api/v1"

Json = Any


class CoordinatorUnreachable(PydistemError):
    """No coordinator answers at the URL (not started, wrong host/port, firewall)."""

    code = "coordinator_unreachable"
    status = 503

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"the coordinator is not running at {url} ({reason}); start it with "
            "`distemd -d` (foreground) or let `distem deploy FILE` start it"
        )
        self.url = url


class PartialFailure(PydistemError):
    """A call on many vnodes failed for some of them.

    ``results`` maps every vnode name to None (done) or the error message;
    ``vnodes`` holds the vnode dicts as the coordinator returned them.
    """

    code = "partial_failure"

    def __init__(self, op: str, results: dict[str, str | None], vnodes: list[dict]) -> None:
        failed = {name: msg for name, msg in results.items() if msg}
        shown = "; ".join(f"{name}: {msg}" for name, msg in list(failed.items())[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        super().__init__(f"{op}: {len(failed)} of {len(results)} vnodes failed: {shown}{more}")
        self.op = op
        self.results = results
        self.vnodes = vnodes
        self.failed = failed


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a vnode returned. ``str(result)`` is its stdout."""

    stdout: str
    stderr: str
    exit_code: int

    @property
    def lines(self) -> list[str]:
        """Stdout split into lines (what the Ruby client's ``vnode_execute`` returned)."""
        return self.stdout.splitlines()

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def __str__(self) -> str:
        return self.stdout

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecResult:
        return cls(
            stdout=str(data.get("stdout") or ""),
            stderr=str(data.get("stderr") or ""),
            exit_code=int(data.get("exit_code", -1)),
        )


def coordinator_url(spec: str | None) -> str:
    """``host``, ``host:port`` or a full ``http://`` URL -> the coordinator's base URL."""
    if not spec:
        return os.environ.get("PYDISTEM_URL") or DEFAULT_URL
    if "://" in spec:
        return spec.rstrip("/")
    host, sep, port = spec.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return f"http://{host}:{port}"
    return f"http://{spec}:4567"


def token_file() -> Path:
    return Path(os.environ.get("PYDISTEM_TOKEN_FILE") or DEFAULT_TOKEN_FILE)


class Client(EventsMixin, LimitsCalls):
    """A connection to one coordinator; use it as a context manager.

    ``url``: ``http://host:port`` (default ``$PYDISTEM_URL`` or ``http://127.0.0.1:4567``);
    ``coordinator``: the CLI's ``host[:port]`` form instead; ``token``: the bearer token
    (default ``$PYDISTEM_TOKEN``, else the file ``$PYDISTEM_TOKEN_FILE`` or
    ``/var/lib/pydistem/token``, read when the first request is sent). ``timeout`` bounds
    every request in seconds; calls that wait (start, wait_vnodes, platform_deploy)
    extend it by what they wait for.

    Every method raises :class:`CoordinatorUnreachable` when nothing answers, and the
    typed error the coordinator sent otherwise: ``ValidationError`` (bad input, with
    ``field`` and ``reason``; nothing was changed), ``NotFound``, ``Conflict``,
    ``Unauthorized`` (wrong token), ``KernelError``, ``AgentUnreachable``...
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 600.0,
        *,
        coordinator: str | None = None,
    ) -> None:
        self.url = coordinator_url(coordinator) if coordinator else coordinator_url(url)
        self.timeout = timeout
        self._token = token or os.environ.get("PYDISTEM_TOKEN") or None
        self._http = httpx.Client(base_url=self.url + API_PREFIX, timeout=timeout)
        self.pending_vnodes: list[str] = []  # set by wait_vnodes

    def __repr__(self) -> str:
        return f"<pydistem.Client {self.url}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the keep-alive connection. Idempotent."""
        self._http.close()

    # ------------------------------------------------------------------ transport

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            try:
                self._token = token_file().read_text().strip()
            except OSError:
                return {}  # the coordinator answers 401, which names the problem
        return {"Authorization": f"Bearer {self._token}"}

    def _request(self, method: str, path: str, body: Json = None, *, wait: float = 0.0) -> Json:
        timeout = httpx.Timeout(self.timeout + wait, connect=10.0)
        try:
            resp = self._http.request(
                method,
                path,
                json=body if method != "GET" else None,
                headers=self._auth(),
                timeout=timeout,
            )
        except httpx.ConnectError as exc:
            raise CoordinatorUnreachable(self.url, "connection refused") from exc
        except httpx.TimeoutException as exc:
            raise PydistemError(
                f"the coordinator at {self.url} did not answer {method} {path} "
                f"within {self.timeout + wait:.0f}s"
            ) from exc
        except httpx.TransportError as exc:
            raise CoordinatorUnreachable(self.url, str(exc) or type(exc).__name__) from exc
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = None
        if resp.is_success:
            return data
        if isinstance(data, dict) and "error" in data:
            err = errors.from_dict(data, resp.status_code)
            if resp.status_code == 401 and not self._token:
                err.message += f" (no token: {token_file()} is not readable; set PYDISTEM_TOKEN)"
                err.args = (err.message,)
            raise err
        text = resp.text.strip()[:300] or resp.reason_phrase
        raise PydistemError(f"{method} {path}: HTTP {resp.status_code}: {text}")

    def daemon_info(self) -> dict[str, Any]:
        """``GET /health``: ``{"ok", "version", "distem_compat"}`` (``distem_compat``: the
        networks allowed on Distem's routes, or null when the daemon does not serve them)."""
        data = self._request("GET", "/health")
        return data if isinstance(data, dict) else {}

    def health(self) -> bool:
        """True when a coordinator answers ``GET /health``; never raises."""
        try:
            resp = self._http.get("/health", timeout=3.0)
        except httpx.HTTPError:
            return False
        return resp.is_success

    def _many(
        self, op: str, names: Iterable[str] | None, *, wait: float = 0.0
    ) -> list[dict[str, Any]]:
        body = {"names": _names(names)}
        data = self._request("POST", f"/vnodes/{op}", body, wait=wait)
        results = data.get("results") or {}
        vnodes = data.get("vnodes") or []
        if any(results.values()):
            raise PartialFailure(f"vnodes_{op}", results, vnodes)
        return vnodes

    # ------------------------------------------------------------------ pnodes

    def pnode_init(
        self, target: str | dict[str, Any] | Iterable[str | dict[str, Any]] = "localhost"
    ) -> list[dict[str, Any]]:
        """Initialise one pnode or a list of them (hostnames or addresses); returns them.

        A target may also be ``{"id": ..., "address": ..., "port": 4568}``: the pnode is
        then keyed by that id (``distem bootstrap`` uses how the machine is reached).
        Idempotent: an already initialised pnode is returned as it is. Raises
        AgentUnreachable when a target's agent does not answer.
        """
        targets = [target] if isinstance(target, str | dict) else list(target)
        return self._request("POST", "/pnodes", {"targets": targets}, wait=300)

    def pnodes_info(self) -> list[dict[str, Any]]:
        """Every pnode as a dict (id, address, hostname, status, cores, memory_mb, runtimes)."""
        return self._request("GET", "/pnodes")

    def pnode_info(self, pnode: str = "localhost") -> dict[str, Any]:
        """One pnode; raises NotFound."""
        return self._request("GET", f"/pnodes/{pnode}")

    # ------------------------------------------------------------------ vnetworks

    def vnetwork_create(
        self, name: str, address: str, opts: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create a vnetwork (``address`` a CIDR); ``opts`` e.g. ``{"network_type": "vxlan",
        "root_interface": "eth1"}``. Raises ValidationError (bad name/CIDR, name taken)."""
        return self._request(
            "POST", "/vnetworks", {"name": name, "address": address, **(opts or {})}
        )

    def vnetworks_info(self) -> list[dict[str, Any]]:
        """Every vnetwork as a dict."""
        return self._request("GET", "/vnetworks")

    def vnetwork_info(self, name: str) -> dict[str, Any]:
        """One vnetwork; raises NotFound."""
        return self._request("GET", f"/vnetworks/{name}")

    def vnetwork_remove(self, name: str) -> Json:
        """Remove a vnetwork; raises NotFound, or Conflict while vifaces use it."""
        return self._request("DELETE", f"/vnetworks/{name}")

    def vnetworks_remove(self) -> list[Json]:
        """Remove every vnetwork (each must be unused)."""
        return [self.vnetwork_remove(v["name"]) for v in self.vnetworks_info()]

    # ------------------------------------------------------------------ vroutes

    def vroute_create(self, srcnet: str, destnet: str, gateway: str) -> dict[str, Any]:
        """Route ``srcnet`` -> ``destnet`` through ``gateway`` (a vnode attached to
        ``srcnet``, or one of its addresses); installed at once in running vnodes.
        Raises ValidationError (unknown vnetwork, gateway not on ``srcnet``)."""
        return self._request(
            "POST", f"/vnetworks/{srcnet}/routes", {"destination": destnet, "gateway": gateway}
        )

    def vroute_complete(self) -> list[dict[str, Any]]:
        """Create every missing vroute between vnetworks joined by gateway vnodes;
        returns the new ones."""
        return self._request("POST", "/vnetworks/routes/complete")

    def vroutes_info(self) -> list[dict[str, Any]]:
        """Every vroute: ``{"source", "destination", "gateway"}``."""
        return self._request("GET", "/vroutes")

    def pnodes_launch_probes(
        self, desc: Any, ref_time: float | None = None
    ) -> list[dict[str, Any]]:
        """Start probes on every pnode, replacing those running: ``desc`` is a list of
        ``{"type": "bw"|"loadavg"|"cpu"|"memory", "frequency": 2, "name", "interface"}``
        or Distem's ``{"bw": {"frequency": 1, "interface": "eth0"}}``. ``ref_time`` is
        accepted for Distem's signature; the coordinator's clock is used."""
        return self._request("POST", "/probes", {"probes": desc}, wait=30)

    def pnodes_stop_probes(self) -> None:
        """Pause every pnode's probes (their data is kept)."""
        self._request("PUT", "/probes", {"state": "stop"}, wait=30)

    def pnodes_restart_probes(self) -> None:
        """Resume the probes after pnodes_stop_probes (NotFound when none were launched)."""
        self._request("PUT", "/probes", {"state": "restart"}, wait=30)

    def pnodes_delete_probes(self) -> None:
        """Stop every pnode's probes and forget their data."""
        self._request("DELETE", "/probes", wait=30)

    def pnodes_get_probes_data(self) -> dict[str, dict[str, list[list[Any]]]]:
        """pnode id -> ``{probe name: [[time, [values...]], ...]}``."""
        return self._request("GET", "/probes")

    def pnodes_probe(self, interface: str) -> dict[str, str | None]:
        """Probe whether each pnode's ``interface`` carries frames for foreign MACs
        (classic vnetworks need it): pnode -> None, or why it cannot."""
        return self._request("POST", "/pnodes/probe", {"interface": interface})

    # ------------------------------------------------------------------ vnodes

    def vnode_create(
        self, name: str, desc: dict[str, Any] | None = None, ssh_key: dict | None = None
    ) -> dict[str, Any]:
        """Create one vnode (status INIT, not started). ``desc`` as in :meth:`vnodes_create`."""
        return self.vnodes_create([name], desc, ssh_key)[0]

    def vnodes_create(
        self,
        names: Iterable[str],
        desc: dict[str, Any] | None = None,
        ssh_key: dict | None = None,
    ) -> list[dict[str, Any]]:
        """Create vnodes sharing one description; they are not started.

        ``desc``: ``{'host': pnode, 'vfilesystem': {'image': 'file:///...', 'shared': True},
        'vifaces': [{'name': 'if0', 'vnetwork': 'vnet'}], 'runtime': 'lxc'}``. All or
        nothing: a ValidationError (with the field) means no vnode was created.
        """
        desc = dict(desc or {})
        if ssh_key:
            desc["ssh_key"] = ssh_key
        vnodes = [{**desc, "name": name} for name in names]
        return self._request("POST", "/vnodes", {"vnodes": vnodes}, wait=60)

    def vnodes_info(self) -> list[dict[str, Any]]:
        """Every vnode as a dict (name, host, status, vifaces with addresses...)."""
        return self._request("GET", "/vnodes")

    def vnode_info(self, name: str) -> dict[str, Any]:
        """One vnode; raises NotFound."""
        return self._request("GET", f"/vnodes/{name}")

    def vnode_start(self, name: str) -> dict[str, Any]:
        """Start one vnode and return it; raises PartialFailure with the reason if it fails."""
        return self.vnodes_start([name])[0]

    def vnodes_start(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Start vnodes (None = all) in parallel. Idempotent for RUNNING vnodes.

        Raises PartialFailure (``.results`` per vnode) if any failed to start.
        """
        return self._many("start", names, wait=600)

    def vnode_stop(self, name: str) -> dict[str, Any]:
        """Stop one vnode (status DOWN)."""
        return self.vnodes_stop([name])[0]

    def vnodes_stop(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Stop vnodes (None = all); raises PartialFailure."""
        return self._many("stop", names, wait=300)

    def vnode_remove(self, name: str) -> list[dict[str, Any]]:
        """Stop and remove one vnode, with its vifaces."""
        return self.vnodes_remove([name])

    def vnodes_remove(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Remove vnodes (None = all); raises PartialFailure."""
        return self._many("remove", names, wait=300)

    def vnode_freeze(self, name: str) -> dict[str, Any]:
        """Freeze one vnode's processes (status FROZEN)."""
        return self.vnodes_freeze([name])[0]

    def vnodes_freeze(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        return self._many("freeze", names, wait=60)

    def vnode_unfreeze(self, name: str) -> dict[str, Any]:
        """Thaw one frozen vnode (status RUNNING again)."""
        return self.vnodes_unfreeze([name])[0]

    def vnodes_unfreeze(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        return self._many("unfreeze", names, wait=60)

    def wait_vnodes(
        self, timeout: float = 600, vnodes: Iterable[str] | None = None, port: int | None = None
    ) -> bool:
        """True once every vnode named (None = all) is RUNNING and answers a command
        (and, with ``port``, has that TCP port open on its default address), False if
        ``timeout`` seconds pass first. ``pending_vnodes`` then names the laggards."""
        body: dict[str, Any] = {"names": _names(vnodes), "timeout": timeout}
        if port is not None:
            body["port"] = port
        data = self._request("POST", "/wait", body, wait=timeout)
        self.pending_vnodes = list(data.get("pending") or [])
        return bool(data.get("ready"))

    def vnode_execute(
        self, vnode: str, command: str | list[str], timeout: float | None = None
    ) -> ExecResult:
        """Run ``command`` in a vnode (a string goes to ``/bin/sh -c``, a list is argv).

        Returns an ExecResult (stdout, stderr, exit_code, lines); a non-zero exit code
        is NOT an error. Raises NotFound, Conflict (vnode not running).
        """
        body: dict[str, Any] = {"command": command}
        if timeout is not None:
            body["timeout"] = timeout
        data = self._request("POST", f"/vnodes/{vnode}/execute", body, wait=timeout or 600)
        return ExecResult.from_dict(data)

    def vnodes_execute(
        self, names: Iterable[str] | None, command: str | list[str]
    ) -> dict[str, ExecResult]:
        """Run one command in many vnodes in parallel; ``{name: ExecResult}``."""
        body = {"names": _names(names), "command": command}
        data = self._request("POST", "/vnodes/execute", body, wait=600)
        return {name: ExecResult.from_dict(res) for name, res in data.items()}

    # ------------------------------------------------------------------ vifaces

    def viface_create(self, vnode: str, name: str, desc: dict[str, Any]) -> dict[str, Any]:
        """Add a viface to a vnode; ``desc`` ``{'vnetwork': 'vnet', 'address'?: ip}``.
        Raises ValidationError (unknown vnetwork, address outside it or taken)."""
        return self._request("POST", f"/vnodes/{vnode}/vifaces", {**desc, "name": name})

    def viface_remove(self, vnode: str, name: str) -> Json:
        """Remove a viface; raises NotFound."""
        return self._request("DELETE", f"/vnodes/{vnode}/vifaces/{name}")

    def viface_attach(self, vnode: str, name: str, desc: dict[str, Any]) -> Json:
        """Attach (or move) a viface of a vnode that does not run: ``desc``
        ``{'vnetwork': 'vnet', 'address'?: ip}``. Raises ValidationError, Conflict."""
        return self._request("POST", f"/vnodes/{vnode}/vifaces/{name}/attach", desc)

    def viface_detach(self, vnode: str, name: str) -> Json:
        """Detach a viface of a vnode that does not run (it stays, unattached)."""
        return self._request("POST", f"/vnodes/{vnode}/vifaces/{name}/detach", {})

    def vnode_mode(self, vnode: str, gateway: bool = True) -> Json:
        """Distem's ``vnode_mode``: ``GATEWAY`` (IPv4 forwarding on, live) or ``NORMAL``."""
        body = {"mode": "GATEWAY" if gateway else "NORMAL"}
        return self._request("PUT", f"/vnodes/{vnode}/mode", body)

    def vnode_ssh_key(self, vnode: str, key: dict[str, str] | None) -> Json:
        """Replace the SSH keys (``{'public', 'private'}``; None removes them) of a vnode
        that does not run; installed at its next start."""
        return self._request("PUT", f"/vnodes/{vnode}/ssh_key", key or {})

    def vnode_host(self, vnode: str, host: str | None) -> Json:
        """Move a vnode never started to pnode ``host`` (None: placed again)."""
        return self._request("PUT", f"/vnodes/{vnode}/host", {"host": host})

    def vfilesystem_image(self, vnode: str, target: str | Path = ".") -> Path:
        """Distem's ``vfilesystem_image``: download the running vnode's root filesystem
        as ``<target>/<vnode>.tgz``; returns that path. Raises Conflict (not running)."""
        dest = Path(target) / f"{vnode}.tgz"
        timeout = httpx.Timeout(self.timeout + 600, connect=10.0)
        with self._http.stream(
            "GET", f"/vnodes/{vnode}/rootfs", headers=self._auth(), timeout=timeout
        ) as resp:
            if not resp.is_success:
                resp.read()
                data = resp.json() if resp.content else {}
                raise errors.from_dict(data if isinstance(data, dict) else {}, resp.status_code)
            with dest.open("wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
        return dest

    def vinput_update(self, vnode: str, viface: str, desc: dict[str, Any] | None) -> Json:
        """Set the inbound limits of a viface: ``{'bandwidth': '10mbit', 'latency': '5ms',
        'loss': '1%', ...}`` (None removes them); the outbound limits are kept.
        Raises NotFound (vnode or viface), ValidationError (bad unit)."""
        return self._traffic_one(vnode, viface, "input", desc)

    def voutput_update(self, vnode: str, viface: str, desc: dict[str, Any] | None) -> Json:
        """Set the outbound limits of a viface; the inbound ones are kept (see vinput_update)."""
        return self._traffic_one(vnode, viface, "output", desc)

    def _traffic_one(
        self, vnode: str, viface: str, direction: str, desc: dict[str, Any] | None
    ) -> Json:
        # the route replaces both directions: send the other one as it is now
        vifs = {v.get("name"): v for v in self.vnode_info(vnode).get("vifaces") or []}
        if viface not in vifs:
            raise errors.NotFound("viface", f"{vnode}.{viface}")
        other = "output" if direction == "input" else "input"
        body = {direction: desc, other: vifs[viface].get(other)}
        return self._request("PUT", f"/vnodes/{vnode}/vifaces/{viface}/traffic", body, wait=60)

    def viface_traffic(
        self, vnode: str, viface: str, input: dict | None = None, output: dict | None = None
    ) -> Json:
        """Set both directions at once (None removes the limits of that direction)."""
        body = {"input": input, "output": output}
        return self._request("PUT", f"/vnodes/{vnode}/vifaces/{viface}/traffic", body, wait=60)

    # ------------------------------------------------------------------ platform

    def platform_deploy(self, doc_or_path: dict[str, Any] | str | Path | Platform) -> dict:
        """Create AND start a whole platform (vnetworks, vnodes) from a document, a YAML
        file or a validated :class:`Platform`. A file is validated here first
        (ValidationError naming the field), then by the coordinator, all or nothing.
        Returns ``{"vnetworks": [...], "vnodes": [...]}``; vnodes that failed to start
        are there with status FAILED and their ``error``."""
        if isinstance(doc_or_path, (str, Path)):
            doc_or_path = load_platform(doc_or_path)
        if isinstance(doc_or_path, Platform):
            doc_or_path = doc_or_path.model_dump(
                mode="json", exclude_none=True, exclude={"vnodes": {"__all__": {"status"}}}
            )
        return self._request("POST", "/platform", doc_or_path, wait=900)

    def platform_info(self) -> dict[str, Any]:
        """``{'pnodes': [...], 'vnetworks': [...], 'vnodes': [...]}``."""
        return self._request("GET", "/platform")

    def quit(self) -> dict[str, Any]:
        """Remove every vnode and vnetwork and clean every pnode. Idempotent."""
        return self._request("POST", "/quit", {}, wait=600)


def _names(names: Iterable[str] | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        return [names]
    out = list(names)
    for i, name in enumerate(out):
        if not isinstance(name, str):
            raise ValidationError(f"names[{i}]", f"must be a string, got {type(name).__name__}")
    return out


__all__ = ["Client", "CoordinatorUnreachable", "ExecResult", "PartialFailure", "coordinator_url"]
