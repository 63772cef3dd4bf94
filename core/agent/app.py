"""The pnode agent's REST application (port 4568), used by remote coordinators.

Routes mirror :class:`pydistem.agent.service.Agent` one to one under
``/api/v1/agent``; see :class:`pydistem.coordinator.agents.HttpAgentLink`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Request
from fastapi.responses import FileResponse

from pydistem import __version__
from pydistem.agent.service import Agent
from pydistem.coordinator.app import install_error_handlers, require_token
from pydistem.errors import ValidationError
from pydistem.http_files import temporary_file_response
from pydistem.model.limits import CpuLimit, MemoryLimit, parse_disk
from pydistem.model.probes import parse_probes
from pydistem.model.specs import Traffic, VNetwork, VNode
from pydistem.model.validate import parse

PREFIX = "/api/v1/agent"
Doc = Annotated[dict[str, Any], Body()]
router = APIRouter(tags=["agent"])


def _agent(request: Request) -> Agent:
    return request.app.state.agent  # type: ignore[no-any-return]


def _vnodes(body: dict[str, Any]) -> list[VNode]:
    return [parse(VNode, v, f"vnodes[{i}]") for i, v in enumerate(body.get("vnodes") or [])]


@router.get("/health")
def health() -> dict[str, Any]:
    return {"ok": True, "version": __version__}


@router.get("/info")
def info(request: Request) -> dict[str, Any]:
    return _agent(request).info()


@router.post("/vnetworks")
def vnetwork_create(request: Request, body: Doc) -> dict[str, Any]:
    body = dict(body)
    peers = body.pop("peers", None)
    if peers is not None and not (
        isinstance(peers, list) and all(isinstance(x, str) for x in peers)
    ):
        raise ValidationError("peers", "a list of pnode addresses")
    _agent(request).vnetwork_create(parse(VNetwork, body), peers)
    return {"ok": True}


@router.get("/underlay")
def underlay_address(request: Request, toward: str) -> dict[str, Any]:
    return {"address": _agent(request).underlay_address(toward)}


@router.post("/l2probe/listen")
def l2_listen(request: Request, body: Doc) -> dict[str, Any]:
    heard = _agent(request).l2_listen(
        str(body["interface"]), str(body["nonce"]), int(body["expect"]), float(body["timeout"])
    )
    return {"heard": heard}


@router.post("/l2probe/send")
def l2_send(request: Request, body: Doc) -> dict[str, Any]:
    _agent(request).l2_send(str(body["interface"]), str(body["nonce"]), str(body["sender"]))
    return {"ok": True}


@router.post("/vnodes/routes")
def vnodes_routes(request: Request, body: Doc) -> dict[str, str | None]:
    plan = body.get("plan")
    if not isinstance(plan, dict):
        raise ValidationError("plan", "a mapping vnode -> {routes, forward}")
    return _agent(request).vnodes_routes(plan)


@router.get("/vnodes/{name}/rootfs")
def vnode_rootfs(request: Request, name: str) -> FileResponse:
    agent = _agent(request)
    return temporary_file_response(
        lambda dest: agent.vnode_rootfs_archive(name, dest),
        f"{name}.tgz",
        "application/gzip",
        folder=agent.state_dir,
        prefix="rootfs-",
        attachment=False,
    )


@router.post("/vnodes/ports")
def vnodes_ports(request: Request, body: Doc) -> dict[str, bool]:
    names, port = body.get("names"), body.get("port")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError("names", "a list of vnode names")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValidationError("port", "a TCP port number (1-65535)")
    return _agent(request).vnodes_port_open(names, port)


@router.delete("/vnetworks/{name}")
def vnetwork_remove(request: Request, name: str) -> dict[str, Any]:
    _agent(request).vnetwork_remove(name)
    return {"ok": True}


@router.post("/vnodes/check")
def vnodes_check(request: Request, body: Doc) -> dict[str, Any]:
    _agent(request).check_vnodes(_vnodes(body), bool(body.get("starting", False)))
    return {"ok": True}


@router.post("/vnodes/start")
def vnodes_start(request: Request, body: Doc) -> dict[str, str | None]:
    members = body.get("members")
    return _agent(request).vnodes_start(
        _vnodes(body),
        str(body.get("etc_hosts") or ""),
        {str(k): int(v) for k, v in members.items()} if isinstance(members, dict) else None,
    )


@router.post("/vnodes/stop")
def vnodes_stop(request: Request, body: Doc) -> dict[str, str | None]:
    return _agent(request).vnodes_stop(list(body.get("names") or []))


@router.post("/vnodes/remove")
def vnodes_remove(request: Request, body: Doc) -> dict[str, str | None]:
    return _agent(request).vnodes_remove(list(body.get("names") or []))


@router.post("/vnodes/freeze")
def vnodes_freeze(request: Request, body: Doc) -> dict[str, str | None]:
    return _agent(request).vnodes_freeze(
        list(body.get("names") or []), bool(body.get("frozen", True))
    )


@router.get("/vnodes/status")
def vnodes_status(request: Request) -> dict[str, str]:
    return _agent(request).vnodes_status()


@router.post("/vnodes/{name}/execute")
def vnode_execute(request: Request, name: str, body: Doc) -> dict[str, Any]:
    stdin = body.get("stdin")
    res = _agent(request).vnode_execute(
        name,
        body["command"],
        body.get("timeout"),
        stdin.encode() if isinstance(stdin, str) else None,
    )
    return asdict(res)


@router.put("/vnodes/{name}/vifaces/{viface}/traffic")
def viface_traffic(request: Request, name: str, viface: str, body: Doc) -> dict[str, Any]:
    tin = parse(Traffic, body["input"], "input") if body.get("input") else None
    tout = parse(Traffic, body["output"], "output") if body.get("output") else None
    _agent(request).viface_traffic(name, viface, tin, tout)
    return {"ok": True}


@router.put("/vnodes/{name}/vifaces/{viface}/link")
def viface_link(request: Request, name: str, viface: str, body: Doc) -> dict[str, Any]:
    up = body.get("up")
    if not isinstance(up, bool):
        raise ValidationError("up", "true (link up) or false (link down)")
    _agent(request).viface_link(name, viface, up)
    return {"ok": True}


@router.put("/vnodes/{name}/limits")
def vnode_limits(request: Request, name: str, body: Doc) -> dict[str, Any]:
    cpu = parse(CpuLimit, body["cpu"], "cpu") if body.get("cpu") else None
    memory = parse(MemoryLimit, body["memory"], "memory") if body.get("memory") else None
    _agent(request).vnode_limits(name, cpu, memory, parse_disk(body.get("disk")))
    return {"ok": True}


@router.post("/probes")
def probes_launch(request: Request, body: Doc) -> dict[str, Any]:
    probes = parse_probes(body.get("probes"))
    ref = body.get("ref_time")
    _agent(request).probes_launch(probes, float(ref) if ref is not None else None)
    return {"ok": True}


@router.put("/probes")
def probes_state(request: Request, body: Doc) -> dict[str, Any]:
    _agent(request).probes_state(str(body.get("state")))
    return {"ok": True}


@router.delete("/probes")
def probes_delete(request: Request) -> dict[str, Any]:
    _agent(request).probes_delete()
    return {"ok": True}


@router.get("/probes")
def probes_data(request: Request) -> dict[str, Any]:
    return _agent(request).probes_data()


@router.get("/vnodes/{name}/limits")
def vnode_limits_info(request: Request, name: str) -> dict[str, Any]:
    return _agent(request).vnode_limits_info(name)


@router.put("/etc_hosts")
def etc_hosts_set(request: Request, body: Doc) -> dict[str, str | None]:
    lines = [str(x) for x in body.get("pnode_lines") or []]
    return _agent(request).etc_hosts_set(str(body.get("vnode_hosts") or ""), lines)


@router.get("/vifaces/macs")
def vifaces_macs(request: Request) -> dict[str, dict[str, str]]:
    return _agent(request).vifaces_macs()


@router.put("/arp")
def arp_fill(request: Request, body: Doc) -> dict[str, str | None]:
    return _agent(request).arp_fill(list(body.get("entries") or []))


@router.put("/peers_latencies")
def peers_latencies(request: Request, body: Doc) -> dict[str, Any]:
    _agent(request).peers_latencies(dict(body.get("rules") or {}))
    return {"ok": True}


@router.post("/clean")
def clean(request: Request) -> dict[str, Any]:
    return asdict(_agent(request).clean())


def create_agent_app(agent: Agent, token: str | None) -> FastAPI:
    app = FastAPI(
        title="pydistem pnode agent",
        version=__version__,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.agent = agent
    install_error_handlers(app)
    require_token(app, token, PREFIX)
    app.include_router(router, prefix=PREFIX)
    return app
