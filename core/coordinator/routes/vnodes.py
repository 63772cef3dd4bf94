"""``/vnodes``: virtual nodes, their vifaces, lifecycle and command execution."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import FileResponse

from pydistem.coordinator.archive import archive_response
from pydistem.coordinator.routes import coordinator
from pydistem.coordinator.service import Coordinator
from pydistem.errors import ValidationError
from pydistem.plugins.runtimes.base import ExecResult

router = APIRouter(tags=["vnodes"])
C = Annotated[Coordinator, Depends(coordinator)]
Doc = Annotated[dict[str, Any], Body()]


def _names(body: dict[str, Any]) -> list[str] | None:
    names = body.get("names")
    if names is None:
        return None
    if isinstance(names, str):
        return [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError("names", "a list of vnode names (or null for all)")
    return names


def _command(body: dict[str, Any]) -> tuple[list[str] | str, float | None]:
    command = body.get("command")
    if isinstance(command, list):
        if not command or not all(isinstance(a, str) for a in command):
            raise ValidationError("command", "a non-empty list of strings, or a string")
    elif not isinstance(command, str) or not command.strip():
        raise ValidationError("command", "a non-empty string, or a list of strings")
    timeout = body.get("timeout")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise ValidationError("timeout", "a positive number of seconds")
    return command, timeout


def _exec(r: ExecResult) -> dict[str, Any]:
    return {"stdout": r.stdout, "stderr": r.stderr, "exit_code": r.exit_code}


@router.get("/vnodes")
def vnodes_list(c: C) -> list[dict[str, Any]]:
    return [c.vnode_dict(v) for v in list(c.vnodes.values())]


@router.post("/vnodes")
def vnodes_create(c: C, body: Doc) -> list[dict[str, Any]]:
    return [c.vnode_dict(v) for v in c.vnodes_create(body.get("vnodes"))]


def _batch(c: Coordinator, action: str, body: dict[str, Any]) -> dict[str, Any]:
    fn = {
        "start": c.vnodes_start,
        "stop": c.vnodes_stop,
        "remove": c.vnodes_remove,
        "freeze": c.vnodes_freeze,
        "unfreeze": c.vnodes_unfreeze,
    }[action]
    results = fn(_names(body))
    vnodes = [c.vnode_dict(c.vnodes[n]) for n in results if n in c.vnodes]
    return {"results": results, "vnodes": vnodes}


@router.post("/vnodes/start")
def vnodes_start(c: C, body: Doc) -> dict[str, Any]:
    return _batch(c, "start", body)


@router.post("/vnodes/stop")
def vnodes_stop(c: C, body: Doc) -> dict[str, Any]:
    return _batch(c, "stop", body)


@router.post("/vnodes/remove")
def vnodes_remove(c: C, body: Doc) -> dict[str, Any]:
    return _batch(c, "remove", body)


@router.post("/vnodes/freeze")
def vnodes_freeze(c: C, body: Doc) -> dict[str, Any]:
    return _batch(c, "freeze", body)


@router.post("/vnodes/unfreeze")
def vnodes_unfreeze(c: C, body: Doc) -> dict[str, Any]:
    return _batch(c, "unfreeze", body)


@router.post("/vnodes/execute")
def vnodes_execute(c: C, body: Doc) -> dict[str, Any]:
    command, timeout = _command(body)
    return {n: _exec(r) for n, r in c.vnodes_execute(_names(body), command, timeout).items()}


@router.get("/vnodes/{name}")
def vnode_show(c: C, name: str) -> dict[str, Any]:
    return c.vnode_dict(c._get_vnode(name))


@router.delete("/vnodes/{name}")
def vnode_remove(c: C, name: str) -> dict[str, Any]:
    return {"results": c.vnodes_remove([name])}


@router.post("/vnodes/{name}/execute")
def vnode_execute(c: C, name: str, body: Doc) -> dict[str, Any]:
    command, timeout = _command(body)
    return _exec(c.vnode_execute(name, command, timeout))


@router.put("/vnodes/{name}/mode")
def vnode_mode(c: C, name: str, body: Doc) -> dict[str, Any]:
    return c.vnode_dict(c.vnode_mode(name, str(body.get("mode"))))


@router.put("/vnodes/{name}/host")
def vnode_host(c: C, name: str, body: Doc) -> dict[str, Any]:
    host = body.get("host")
    if host is not None and not isinstance(host, str):
        raise ValidationError("host", "a pnode id, hostname or address (or null: placed again)")
    return c.vnode_dict(c.vnode_host(name, host))


@router.put("/vnodes/{name}/ssh_key")
def vnode_ssh_key(c: C, name: str, body: Doc) -> dict[str, Any]:
    return c.vnode_dict(c.vnode_ssh_key(name, body or None))


@router.post("/vnodes/{name}/vifaces/{viface}/attach")
def viface_attach(c: C, name: str, viface: str, body: Doc) -> dict[str, Any]:
    return c.viface_attach(name, viface, body).model_dump()


@router.post("/vnodes/{name}/vifaces/{viface}/detach")
def viface_detach(c: C, name: str, viface: str) -> dict[str, Any]:
    return c.viface_detach(name, viface).model_dump()


@router.get("/vnodes/{name}/rootfs")
def vnode_rootfs(c: C, name: str) -> FileResponse:
    return archive_response(c, name)


@router.post("/vnodes/{name}/vifaces")
def viface_create(c: C, name: str, body: Doc) -> dict[str, Any]:
    return c.viface_create(name, body).model_dump()


@router.delete("/vnodes/{name}/vifaces/{viface}")
def viface_remove(c: C, name: str, viface: str) -> dict[str, Any]:
    return c.viface_remove(name, viface).model_dump()


@router.put("/vnodes/{name}/vifaces/{viface}/traffic")
def viface_traffic(c: C, name: str, viface: str, body: Doc) -> dict[str, Any]:
    return c.viface_traffic(name, viface, body.get("input"), body.get("output")).model_dump()


@router.post("/wait")
def wait(c: C, body: Doc) -> dict[str, Any]:
    timeout = body.get("timeout", 600)
    if not isinstance(timeout, int | float) or timeout < 0:
        raise ValidationError("timeout", "a number of seconds >= 0")
    port = body.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise ValidationError("port", "a TCP port number (1-65535)")
    if port is not None and not 0 < port < 65536:
        raise ValidationError("port", "a TCP port number (1-65535)")
    pending = c.wait_vnodes(_names(body), float(timeout), port)
    return {"ready": not pending, "pending": pending}
