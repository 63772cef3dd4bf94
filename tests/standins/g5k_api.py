"""Stand-in for the Grid'5000 reference REST API, as execo 2.8.2 reads it.

Serves the GET shapes execo_g5k.api_utils fetches (``/``, ``/sites``,
``/network_equipments``, ``/sites/{s}``, ``/sites/{s}/network_equipments``,
``/sites/{s}/clusters``, ``/sites/{s}/clusters/{c}``, ``/sites/{s}/clusters/{c}/nodes``)
under any base path (``/stable/``, ``/3.0/``), from a small description of sites,
clusters and nodes. Optional HTTP Basic auth; a fault answers 503 to the first N
requests of a path. Every request is logged (method, path, status, whether it carried
auth) to ``--log`` so tests can check what was asked — the password never is.

By hand:
    python -m tests.standins.g5k_api --port 8900 --site rennes --cluster paravance:2
    curl http://127.0.0.1:8900/stable/sites
then point execo at it (``g5k_configuration['api_uri'] = 'http://127.0.0.1:8900/stable/'``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def node_doc(uid: str, cores: int = 16, memory_gib: int = 128) -> dict[str, Any]:
    """A node as the reference API describes it (the fields execo and we read)."""
    return {
        "uid": uid,
        "type": "node",
        "architecture": {"nb_procs": 2, "nb_cores": cores, "nb_threads": cores * 2,
                         "platform_type": "x86_64"},
        "main_memory": {"ram_size": memory_gib * 2**30},
        "network_adapters": [
            {"device": "eth0", "interface": "Ethernet", "management": False, "mountable": True,
             "switch": "gw", "rate": 10_000_000_000}
        ],
    }  # fmt: skip


class World:
    """Sites -> clusters -> node uids, plus faults and the request log."""

    def __init__(
        self,
        clusters: dict[str, dict[str, int]],
        *,
        auth: tuple[str, str] | None = None,
        fail: dict[str, int] | None = None,
        log: Path | None = None,
    ) -> None:
        self.clusters = clusters  # {site: {cluster: n_nodes}}
        self.auth = auth
        self.fail = dict(fail or {})  # {path suffix: requests still to answer 503}
        self.log = log
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)
            if self.log is not None:
                with self.log.open("a") as f:
                    f.write(json.dumps(entry) + "\n")

    def answer(self, path: str) -> tuple[int, Any]:
        """(status, JSON document) for a path relative to the API base."""
        parts = [p for p in path.split("/") if p]
        with self.lock:
            key = "/" + "/".join(parts)
            if self.fail.get(key, 0) > 0:
                self.fail[key] -= 1
                return 503, {"code": 503, "message": "Service Unavailable (stand-in fault)"}
        if not parts:
            return 200, {"version": "standin-1", "type": "grid"}
        if parts == ["sites"]:
            return 200, {
                "items": [{"uid": s} for s in sorted(self.clusters)],
                "total": len(self.clusters),
            }
        if parts == ["network_equipments"]:
            return 200, {"items": []}
        if parts[0] != "sites" or parts[1] not in self.clusters:
            return 404, {"code": 404, "message": f"not found: {path}"}
        site, rest = parts[1], parts[2:]
        clusters = self.clusters[site]
        if not rest:
            return 200, {"uid": site, "type": "site", "frontend_ip": None}
        if rest == ["network_equipments"]:
            return 200, {"items": []}
        if rest == ["clusters"]:
            return 200, {"items": [{"uid": c} for c in sorted(clusters)]}
        if rest[0] == "clusters" and len(rest) >= 2 and rest[1] in clusters:
            cluster = rest[1]
            if len(rest) == 2:
                return 200, {"uid": cluster, "type": "cluster", "queues": ["default", "admin"]}
            if rest[2:] == ["nodes"]:
                n = clusters[cluster]
                return 200, {"items": [node_doc(f"{cluster}-{i}") for i in range(1, n + 1)]}
        return 404, {"code": 404, "message": f"not found: {path}"}


def make_handler(world: World, base: str) -> type[BaseHTTPRequestHandler]:
    prefix = "/" + base.strip("/")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if prefix != "/" and path.startswith(prefix):
                path = path[len(prefix) :]
            auth_header = self.headers.get("Authorization")
            status, doc = self._authorised(auth_header) or world.answer(path)
            world.record(
                {"method": "GET", "path": path, "status": status, "auth": auth_header is not None}
            )
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self, header: str | None) -> tuple[int, Any] | None:
            if world.auth is None:
                return None
            want = "Basic " + base64.b64encode(":".join(world.auth).encode()).decode()
            if header != want:
                return 401, {"code": 401, "message": "Unauthorized"}
            return None

    return Handler


def serve(
    world: World, host: str = "127.0.0.1", port: int = 0, base: str = "/stable/"
) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; ``server.server_address`` has the port."""
    server = ThreadingHTTPServer((host, port), make_handler(world, base))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def parse_clusters(specs: Sequence[str], site: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {site: {}}
    for spec in specs:
        name, _, n = spec.partition(":")
        out[site][name] = int(n or 4)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.standins.g5k_api",
        description="Serve a stand-in Grid'5000 reference API (what execo_g5k reads).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--base", default="/stable/", help="base path (default /stable/)")
    parser.add_argument("--site", default="rennes")
    parser.add_argument(
        "--cluster", action="append", default=[], metavar="NAME:NODES",
        help="a cluster of the site and its node count (repeatable; default paravance:4)",
    )  # fmt: skip
    parser.add_argument("--user", help="require HTTP Basic auth with this user ...")
    parser.add_argument("--password-file", type=Path, help="... and the password in this file")
    parser.add_argument(
        "--fail", action="append", default=[], metavar="PATH:N",
        help="answer 503 to the first N requests of PATH (e.g. /sites:2)",
    )  # fmt: skip
    parser.add_argument("--log", type=Path, help="append one JSON line per request here")
    args = parser.parse_args(argv)
    auth = None
    if args.user:
        if not args.password_file:
            parser.error("--user needs --password-file")
        auth = (args.user, args.password_file.read_text().strip())
    fail = {p.rsplit(":", 1)[0]: int(p.rsplit(":", 1)[1]) for p in args.fail}
    world = World(
        parse_clusters(args.cluster or ["paravance:4"], args.site),
        auth=auth,
        fail=fail,
        log=args.log,
    )
    server = ThreadingHTTPServer((args.host, args.port), make_handler(world, args.base))
    print(f"Grid'5000 API stand-in on http://{args.host}:{server.server_address[1]}{args.base}",
          flush=True)  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
