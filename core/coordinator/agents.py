"""How the coordinator reaches pnode agents: in-process, or over HTTP (port 4568).

Both links offer the methods of :class:`pydistem.agent.service.Agent` that the
coordinator uses, with the same arguments and results, so the coordinator never
knows which one it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import httpx

from pydistem import errors
from pydistem.model.limits import CpuLimit, DiskThrottle, MemoryLimit
from pydistem.model.probes import Probe
from pydistem.model.specs import Traffic, VNetwork, VNode
from pydistem.plugins.runtimes.base import ExecResult


class AgentLink(Protocol):
    def info(self) -> dict[str, Any]: ...
    def vnetwork_create(self, vnet: VNetwork, peers: list[str] | None = None) -> None: ...
    def vnetwork_remove(self, name: str) -> None: ...
    def check_vnodes(self, vnodes: list[VNode], starting: bool = False) -> None: ...
    def vnodes_start(
        self, vnodes: list[VNode], etc_hosts: str = "", members: dict[str, int] | None = None
    ) -> dict[str, str | None]: ...
    def vnodes_stop(self, names: list[str]) -> dict[str, str | None]: ...
    def vnodes_remove(self, names: list[str]) -> dict[str, str | None]: ...
    def vnodes_freeze(self, names: list[str], frozen: bool = True) -> dict[str, str | None]: ...
    def vnodes_status(self) -> dict[str, str]: ...
    def vnode_execute(
        self,
        name: str,
        command: list[str] | str,
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult: ...
    def viface_traffic(
        self, vnode: str, viface: str, input: Traffic | None, output: Traffic | None
    ) -> None: ...
    def viface_link(self, vnode: str, viface: str, up: bool) -> None: ...
    def vnode_limits(
        self,
        vnode: str,
        cpu: CpuLimit | None,
        memory: MemoryLimit | None,
        disk: list[DiskThrottle] | None = None,
    ) -> None: ...
    def vnode_limits_info(self, vnode: str) -> dict[str, Any]: ...
    def probes_launch(self, probes: list[Probe], ref_time: float | None = None) -> None: ...
    def probes_state(self, state: str) -> None: ...
    def probes_delete(self) -> None: ...
    def probes_data(self) -> dict[str, list[list[Any]]]: ...
    def clean(self) -> Any: ...
    # Distem's global tables and latency matrix
    def etc_hosts_set(self, vnode_hosts: str, pnode_lines: list[str]) -> dict[str, str | None]: ...
    def vifaces_macs(self) -> dict[str, dict[str, str]]: ...
    def arp_fill(self, entries: list[dict[str, str]]) -> dict[str, str | None]: ...
    def peers_latencies(self, rules: dict[str, dict[str, Any]]) -> None: ...
    def underlay_address(self, toward: str) -> str: ...
    def l2_listen(self, interface: str, nonce: str, expect: int, timeout: float) -> list[str]: ...
    def l2_send(self, interface: str, nonce: str, sender: str) -> None: ...
    def vnodes_routes(self, plan: dict[str, dict[str, Any]]) -> dict[str, str | None]: ...
    def vnodes_port_open(self, names: list[str], port: int) -> dict[str, bool]: ...
    def vnode_rootfs_archive(self, name: str, dest: Path) -> None: ...


class HttpAgentLink:
    """An agent on another pnode, reached through its REST API (see core/agent/app.py)."""

    def __init__(self, pnode: str, base_url: str, token: str | None, timeout: float = 600) -> None:
        self.pnode = pnode
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # a pnode that is gone must not hold quit for minutes: connect fails fast
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1/agent",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            resp = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise errors.AgentUnreachable(self.pnode, f"{type(exc).__name__}: {exc}") from None
        data = resp.json() if resp.content else None
        if resp.status_code >= 400:
            raise errors.from_dict(data if isinstance(data, dict) else {}, resp.status_code)
        return data

    def info(self) -> dict[str, Any]:
        return dict(self._call("GET", "/info"))

    def vnetwork_create(self, vnet: VNetwork, peers: list[str] | None = None) -> None:
        body = vnet.model_dump()
        if peers is not None:
            body["peers"] = peers
        self._call("POST", "/vnetworks", body)

    def underlay_address(self, toward: str) -> str:
        return str(self._call("GET", f"/underlay?toward={toward}")["address"])

    def l2_listen(self, interface: str, nonce: str, expect: int, timeout: float) -> list[str]:
        body = {"interface": interface, "nonce": nonce, "expect": expect, "timeout": timeout}
        return list(self._call("POST", "/l2probe/listen", body)["heard"])

    def l2_send(self, interface: str, nonce: str, sender: str) -> None:
        body = {"interface": interface, "nonce": nonce, "sender": sender}
        self._call("POST", "/l2probe/send", body)

    def vnodes_routes(self, plan: dict[str, dict[str, Any]]) -> dict[str, str | None]:
        return dict(self._call("POST", "/vnodes/routes", {"plan": plan}))

    def vnodes_port_open(self, names: list[str], port: int) -> dict[str, bool]:
        return dict(self._call("POST", "/vnodes/ports", {"names": names, "port": port}))

    def vnode_rootfs_archive(self, name: str, dest: Path) -> None:
        """Stream the agent's tarball into ``dest`` (removed again on failure)."""
        try:
            with self._http.stream("GET", f"/vnodes/{name}/rootfs") as resp:
                if resp.status_code >= 400:
                    resp.read()
                    data = resp.json() if resp.content else None
                    raise errors.from_dict(data if isinstance(data, dict) else {}, resp.status_code)
                with dest.open("wb") as out:
                    for chunk in resp.iter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            dest.unlink(missing_ok=True)
            raise errors.AgentUnreachable(self.pnode, f"{type(exc).__name__}: {exc}") from None

    def vnetwork_remove(self, name: str) -> None:
        self._call("DELETE", f"/vnetworks/{name}")

    def check_vnodes(self, vnodes: list[VNode], starting: bool = False) -> None:
        body = {"vnodes": [v.model_dump() for v in vnodes], "starting": starting}
        self._call("POST", "/vnodes/check", body)

    def vnodes_start(
        self, vnodes: list[VNode], etc_hosts: str = "", members: dict[str, int] | None = None
    ) -> dict[str, str | None]:
        body = {
            "vnodes": [v.model_dump() for v in vnodes],
            "etc_hosts": etc_hosts,
            "members": members,
        }
        return dict(self._call("POST", "/vnodes/start", body))

    def vnodes_stop(self, names: list[str]) -> dict[str, str | None]:
        return dict(self._call("POST", "/vnodes/stop", {"names": names}))

    def vnodes_remove(self, names: list[str]) -> dict[str, str | None]:
        return dict(self._call("POST", "/vnodes/remove", {"names": names}))

    def vnodes_freeze(self, names: list[str], frozen: bool = True) -> dict[str, str | None]:
        return dict(self._call("POST", "/vnodes/freeze", {"names": names, "frozen": frozen}))

    def vnodes_status(self) -> dict[str, str]:
        return dict(self._call("GET", "/vnodes/status"))

    def vnode_execute(
        self,
        name: str,
        command: list[str] | str,
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        body = {
            "command": command,
            "timeout": timeout,
            "stdin": stdin.decode() if stdin is not None else None,
        }
        data = self._call("POST", f"/vnodes/{name}/execute", body)
        return ExecResult(data["stdout"], data["stderr"], data["exit_code"])

    def viface_traffic(
        self, vnode: str, viface: str, input: Traffic | None, output: Traffic | None
    ) -> None:
        body = {
            "input": input.model_dump() if input else None,
            "output": output.model_dump() if output else None,
        }
        self._call("PUT", f"/vnodes/{vnode}/vifaces/{viface}/traffic", body)

    def viface_link(self, vnode: str, viface: str, up: bool) -> None:
        self._call("PUT", f"/vnodes/{vnode}/vifaces/{viface}/link", {"up": up})

    def vnode_limits(
        self,
        vnode: str,
        cpu: CpuLimit | None,
        memory: MemoryLimit | None,
        disk: list[DiskThrottle] | None = None,
    ) -> None:
        body = {
            "cpu": cpu.model_dump() if cpu else None,
            "memory": memory.model_dump() if memory else None,
            "disk": [t.model_dump() for t in disk] if disk else None,
        }
        self._call("PUT", f"/vnodes/{vnode}/limits", body)

    def vnode_limits_info(self, vnode: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/vnodes/{vnode}/limits"))

    def probes_launch(self, probes: list[Probe], ref_time: float | None = None) -> None:
        body = {"probes": [p.model_dump() for p in probes], "ref_time": ref_time}
        self._call("POST", "/probes", body)

    def probes_state(self, state: str) -> None:
        self._call("PUT", "/probes", {"state": state})

    def probes_delete(self) -> None:
        self._call("DELETE", "/probes")

    def probes_data(self) -> dict[str, list[list[Any]]]:
        return dict(self._call("GET", "/probes"))

    def clean(self) -> Any:
        return self._call("POST", "/clean")

    def etc_hosts_set(self, vnode_hosts: str, pnode_lines: list[str]) -> dict[str, str | None]:
        body = {"vnode_hosts": vnode_hosts, "pnode_lines": pnode_lines}
        return dict(self._call("PUT", "/etc_hosts", body))

    def vifaces_macs(self) -> dict[str, dict[str, str]]:
        return dict(self._call("GET", "/vifaces/macs"))

    def arp_fill(self, entries: list[dict[str, str]]) -> dict[str, str | None]:
        return dict(self._call("PUT", "/arp", {"entries": entries}))

    def peers_latencies(self, rules: dict[str, dict[str, Any]]) -> None:
        self._call("PUT", "/peers_latencies", {"rules": rules})

    def close(self) -> None:
        self._http.close()
