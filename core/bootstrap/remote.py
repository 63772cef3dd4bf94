"""Run on a machine by bootstrap, with the machine's own pydistem (``python -m
pydistem.bootstrap.remote``): talk to the coordinator next door, clean a journal.

- ``init-pnodes URL TOKEN_FILE`` reads a JSON list of pnode targets on stdin and prints
  ``{id: null | error}``, one pnode at a time so that one bad agent spoils nothing else;
- ``quit URL TOKEN_FILE`` removes every vnode and vnetwork and cleans every pnode;
- ``clean STATE_DIR TAG`` removes what the (stopped) agent of STATE_DIR journaled;
- ``l2-listen ADDRESS NONCE EXPECT TIMEOUT MARK`` listens on the uplink holding ADDRESS
  for probe frames (agent/l2probe.py), creates ``MARK.ready`` once it receives and stops
  early when ``MARK.stop`` appears; prints ``{"interface", "heard"}``;
- ``l2-send ADDRESS NONCE SENDER`` sends probe frames out of that uplink.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from pydistem.errors import PydistemError


def _client(url: str, token_file: str):  # -> pydistem.client.Client
    from pydistem.client import Client

    return Client(url, token=Path(token_file).read_text().strip(), timeout=120)


def init_pnodes(url: str, token_file: str, targets: list[dict]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    with _client(url, token_file) as client:
        for target in targets:
            try:
                client.pnode_init([target])
                out[target["id"]] = None
            except PydistemError as exc:
                out[target["id"]] = exc.message
    return out


def quit_platform(url: str, token_file: str) -> dict:
    with _client(url, token_file) as client:
        if not client.health():
            return {"error": f"no coordinator answers at {url}"}
        return client.quit()


def clean(state_dir: str, tag: str) -> dict:
    from pydistem.agent.service import Agent

    path = Path(state_dir) / "agent"
    if not (path / "journal.jsonl").exists():
        return {"removed": [], "failed": {}}
    agent = Agent(path, tag=tag)
    try:
        return asdict(agent.clean())
    finally:
        agent.close()


def l2_listen(address: str, nonce: str, expect: int, timeout: float, mark: str) -> dict:
    from pydistem.agent import l2probe

    ready, stop = Path(f"{mark}.ready"), Path(f"{mark}.stop")
    interface = l2probe.uplink_of(address)
    try:
        heard = l2probe.listen(
            interface, nonce, expect, timeout, ready=ready.touch, stop=stop.exists
        )
    finally:
        ready.unlink(missing_ok=True)
        stop.unlink(missing_ok=True)
    return {"interface": interface, "heard": heard}


def l2_send(address: str, nonce: str, sender: str) -> dict:
    from pydistem.agent import l2probe

    interface = l2probe.uplink_of(address)
    l2probe.send(interface, nonce, sender)
    return {"interface": interface}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pydistem.bootstrap.remote")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("init-pnodes", "quit"):
        s = sub.add_parser(name)
        s.add_argument("url")
        s.add_argument("token_file")
    s = sub.add_parser("clean")
    s.add_argument("state_dir")
    s.add_argument("tag")
    s = sub.add_parser("l2-listen")
    for name in ("address", "nonce"):
        s.add_argument(name)
    s.add_argument("expect", type=int)
    s.add_argument("timeout", type=float)
    s.add_argument("mark")
    s = sub.add_parser("l2-send")
    for name in ("address", "nonce", "sender"):
        s.add_argument(name)
    args = p.parse_args(argv)
    try:
        if args.cmd == "init-pnodes":
            result: object = init_pnodes(args.url, args.token_file, json.load(sys.stdin))
        elif args.cmd == "quit":
            result = quit_platform(args.url, args.token_file)
        elif args.cmd == "clean":
            result = clean(args.state_dir, args.tag)
        elif args.cmd == "l2-listen":
            result = l2_listen(args.address, args.nonce, args.expect, args.timeout, args.mark)
        else:
            result = l2_send(args.address, args.nonce, args.sender)
    except (PydistemError, OSError, ValueError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
