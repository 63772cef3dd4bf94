"""``distemd``: the daemon. ``distemd -d`` runs the coordinator (port 4567) with an
in-process agent for this machine; plain ``distemd`` runs only a pnode agent (4568).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/pydistem")


def load_or_create_token(path: Path) -> str:
    """The bearer token in ``path``, created (mode 0600) on first start."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="distemd", description=__doc__)
    p.add_argument(
        "-d",
        "--coordinator",
        action="store_true",
        help="run the coordinator (and this machine's agent in-process)",
    )
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=None, help="port (default 4567 with -d, 4568 for an agent)"
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("PYDISTEM_STATE_DIR", DEFAULT_STATE_DIR)),
        help="where state, journal and token live (default $PYDISTEM_STATE_DIR or "
        f"{DEFAULT_STATE_DIR})",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="bearer token file (default STATE_DIR/token, created mode 0600)",
    )
    p.add_argument(
        "--tag",
        default=os.environ.get("PYDISTEM_TAG", "a"),
        help="short tag that makes this agent's kernel object names unique "
        "(default $PYDISTEM_TAG or a)",
    )
    p.add_argument(
        "--distem-compat",
        action="store_true",
        help="with -d, also serve Distem 1.x's REST routes (no token; see --distem-compat-allow)",
    )
    p.add_argument(
        "--distem-compat-allow",
        default="127.0.0.0/8,::1/128",
        metavar="CIDR[,CIDR]",
        help="client networks allowed on the Distem routes (default loopback only)",
    )
    p.add_argument(
        "--pnode-id",
        default="localhost",
        help="with -d, the pnode id of this machine's agent (default localhost; "
        "distem bootstrap passes how the machine is reached, e.g. 10.0.0.1 or host:2222)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if os.geteuid() != 0:
        print("distemd: must run as root (it drives netlink, LXC and cgroups)", file=sys.stderr)
        return 1
    import uvicorn

    from pydistem.agent.service import Agent
    from pydistem.errors import PydistemError

    token = load_or_create_token(args.token_file or args.state_dir / "token")
    try:
        agent = Agent(args.state_dir / "agent", tag=args.tag)
    except PydistemError as exc:
        print(f"distemd: {exc}", file=sys.stderr)
        return 1
    for driver, why in agent.warm_up().items():
        logging.getLogger("pydistem").warning("%s not loaded: %s", driver, why)
    if args.coordinator:
        from pydistem.coordinator.agents import HttpAgentLink
        from pydistem.coordinator.app import create_app
        from pydistem.coordinator.service import Coordinator
        from pydistem.state.store import Store

        store = Store(args.state_dir / "coordinator.sqlite")
        coordinator = Coordinator(
            store,
            connect=lambda p: HttpAgentLink(p.id, f"http://{p.address}:{p.port}", token),
            local_agent=agent,
            local_id=args.pnode_id,
        )
        app = create_app(
            coordinator,
            token,
            distem_compat=args.distem_compat,
            compat_allow=[c.strip() for c in args.distem_compat_allow.split(",") if c.strip()],
        )
        port = args.port or 4567
    else:
        from pydistem.agent.app import create_agent_app

        app = create_agent_app(agent, token)
        port = args.port or 4568
    config = uvicorn.Config(
        app,
        host=args.bind,
        port=port,
        log_level="warning",
        access_log=args.verbose,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    logging.getLogger("pydistem").info("distemd listening on %s:%d", args.bind, port)
    server.run()
    agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
