"""The Distem 1.x command line over Distem's own wire protocol (``distem --distem-wire``).

:class:`DistemWireClient` offers the client methods a translated Distem 1.x command line
calls (see :mod:`.distem1`) and sends each one as Distem's Ruby client did: form fields
with JSON text inside, to Distem's paths, no token. It talks to ``distemd -d
--distem-compat`` (or to an original Distem coordinator); results keep Distem's shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from pydistem.client import CoordinatorUnreachable, ExecResult, coordinator_url
from pydistem.errors import PydistemError

ERROR_HEADER = "X-Application-Error-Code"


class DistemWireError(PydistemError):
    """A Distem coordinator answered non-200: its status and error header."""

    code = "distem_error"

    def __init__(self, status: int, description: str | None) -> None:
        super().__init__(f"HTTP Status: {status}, Description: {description or '-'}")
        self.http_status = status
        self.description = description


def _field(value: Any) -> str | None:
    """rest-client's ``flatten_hash``: Hash/Array as JSON, bool as text, nil bare."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _traffic(limits: dict[str, str] | None) -> dict[str, Any]:
    """A pydistem Traffic dict -> Distem's vtraffic desc."""
    out: dict[str, Any] = {}
    for key, value in (limits or {}).items():
        if key == "bandwidth":
            out["bandwidth"] = {"rate": value}
        elif key == "latency":
            out.setdefault("latency", {})["delay"] = value
        elif key == "jitter":
            out.setdefault("latency", {})["jitter"] = value
        else:
            out[key] = {"percent": value}
    return out


class DistemWireClient:
    """A connection to a coordinator that speaks Distem 1.4's REST protocol."""

    def __init__(self, coordinator: str | None = None, timeout: float = 9999.0) -> None:
        self.url = coordinator_url(coordinator)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)

    def __enter__(self) -> DistemWireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **fields: Any) -> Any:
        body = None
        headers = {"Accept": "*/*"}
        if method in ("POST", "PUT"):
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            parts = []
            for key, value in fields.items():
                text = _field(value)
                enc = quote(key, safe="")
                parts.append(enc if text is None else f"{enc}={quote(text, safe='')}")
            body = "&".join(parts).encode()
        try:
            resp = self._http.request(method, path, content=body, headers=headers)
        except httpx.ConnectError as exc:
            raise CoordinatorUnreachable(self.url, "connection refused") from exc
        except httpx.TransportError as exc:
            raise CoordinatorUnreachable(self.url, str(exc) or type(exc).__name__) from exc
        if resp.status_code != 200:
            raise DistemWireError(resp.status_code, resp.headers.get(ERROR_HEADER))
        return json.loads(resp.content) if resp.content else None

    @staticmethod
    def _name(name: str) -> str:
        return quote(name.replace(" ", "+"), safe="+")

    # ------------------------------------------------------------ pnodes
    def pnode_init(self, targets: Iterable[str]) -> Any:
        return self._call("POST", "/pnodes", target=list(targets), desc={}, **{"async": False})

    def pnodes_info(self) -> Any:
        return self._call("GET", "/pnodes")

    def pnode_info(self, pnode: str) -> Any:
        return self._call("GET", f"/pnodes/{pnode}")

    def quit(self) -> Any:
        return self._call("DELETE", "/pnodes")

    # ------------------------------------------------------------ vnetworks
    def vnetwork_create(self, name: str, address: str) -> Any:
        return self._call("POST", "/vnetworks", name=name, address=address)

    def vnetworks_info(self) -> Any:
        return self._call("GET", "/vnetworks")

    def vnetwork_info(self, name: str) -> Any:
        return self._call("GET", f"/vnetworks/{self._name(name)}")

    def vnetwork_remove(self, name: str) -> Any:
        return self._call("DELETE", f"/vnetworks/{self._name(name)}")

    def vnetworks_remove(self) -> Any:
        return self._call("DELETE", "/vnetworks")

    # ------------------------------------------------------------ vnodes
    def vnode_create(self, name: str, desc: dict[str, Any], ssh_key: Any = None) -> Any:
        path = f"/vnodes/{self._name(name)}"
        return self._call("POST", path, desc=desc, ssh_key=ssh_key or {}, **{"async": False})

    def _vnode_put(self, name: str, **fields: Any) -> Any:
        return self._call("PUT", f"/vnodes/{self._name(name)}", **fields)

    def vnode_start(self, name: str) -> Any:
        return self._vnode_put(name, desc={"status": "RUNNING"}, type="update")

    def vnode_stop(self, name: str) -> Any:
        return self._vnode_put(name, desc={"status": "DOWN"}, type="stop")

    def vnode_remove(self, name: str) -> Any:
        return self._vnode_put(name, type="remove")

    def vnodes_remove(self) -> Any:
        return self._call("PUT", "/vnodes", type="remove")

    def vnodes_info(self) -> Any:
        return self._call("GET", "/vnodes")

    def vnode_info(self, name: str) -> Any:
        return self._call("GET", f"/vnodes/{self._name(name)}")

    def vnode_execute(self, name: str, command: str) -> ExecResult:
        """Distem returns the output lines only: exit status 0 unless the call fails."""
        lines = self._call("POST", f"/vnodes/{self._name(name)}/commands", command=command)
        return ExecResult("".join(f"{line}\n" for line in lines or []), "", 0)

    def vfilesystem_image(self, name: str, target: str = ".") -> Path:
        """``GET /vnodes/V/filesystem/image`` (from the coordinator, where Distem's CLI
        asked the vnode's pnode) written to ``<target>/<V>.tgz``."""
        path = f"/vnodes/{self._name(name)}/filesystem/image"
        try:
            resp = self._http.get(path, headers={"Accept": "*/*"})
        except httpx.TransportError as exc:
            raise CoordinatorUnreachable(self.url, str(exc) or type(exc).__name__) from exc
        if resp.status_code != 200:
            raise DistemWireError(resp.status_code, resp.headers.get(ERROR_HEADER))
        dest = Path(target) / f"{name}.tgz"
        dest.write_bytes(resp.content)
        return dest

    # ------------------------------------------------------------ vifaces
    def viface_create(self, vnode: str, name: str, desc: dict[str, Any]) -> Any:
        path = f"/vnodes/{self._name(vnode)}/ifaces"
        return self._call("POST", path, name=name, desc=desc)

    def viface_remove(self, vnode: str, name: str) -> Any:
        return self._call("DELETE", f"/vnodes/{self._name(vnode)}/ifaces/{self._name(name)}")

    def viface_traffic(self, vnode: str, name: str, input: dict | None, output: dict | None) -> Any:
        desc = {"input": _traffic(input), "output": _traffic(output)}
        path = f"/vnodes/{self._name(vnode)}/ifaces/{self._name(name)}"
        return self._call("PUT", path, desc=desc)

    def vinput_update(self, vnode: str, name: str, limits: dict | None) -> Any:
        path = f"/vnodes/{self._name(vnode)}/ifaces/{self._name(name)}"
        return self._call("PUT", path, desc={"input": _traffic(limits)})

    def voutput_update(self, vnode: str, name: str, limits: dict | None) -> Any:
        path = f"/vnodes/{self._name(vnode)}/ifaces/{self._name(name)}"
        return self._call("PUT", path, desc={"output": _traffic(limits)})

    # ------------------------------------------------------------ platform
    def platform_info(self) -> Any:
        return self._call("GET", "/vplatform")

    def platform_deploy(self, doc: Any) -> Any:
        data = doc if isinstance(doc, str) else json.dumps(doc)
        return self._call("POST", "/vplatform", format="JSON", data=data, rootfs=None)
