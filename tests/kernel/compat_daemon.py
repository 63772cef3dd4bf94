"""A real ``distemd -d --distem-compat`` for the Distem compat tests, and the request
encoding of Distem's Ruby client (rest-client 2.1)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

import pydistem.testing
from pydistem.coordinator.compat.encoding import ERROR_HEADER

#: headers of every request of the Ruby client (WIRE_CAPTURE.md)
RUBY_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": "rest-client/2.1.0 (linux-gnu x86_64) ruby/3.1.2p20",
}
FORM = "application/x-www-form-urlencoded"


def www_form(fields: list[tuple[str, str | None]]) -> str:
    """Ruby's ``URI.encode_www_form``: ``*-._`` and alphanumerics kept, space as ``+``,
    the rest ``%XX``; a None value is a bare key (Ruby nil)."""

    def enc(text: str) -> str:
        return quote(text, safe="*-._ ").replace(" ", "+")

    return "&".join(enc(k) if v is None else f"{enc(k)}={enc(v)}" for k, v in fields)


def call(h: httpx.Client, method: str, path: str, status: int = 200, **fields: Any) -> Any:
    """One request as Distem's Ruby client sends it (its headers, JSON inside form
    fields); asserts ``status``; the decoded JSON of a 200, else the response."""
    headers = dict(RUBY_HEADERS)
    body = None
    if method in ("POST", "PUT"):
        pairs = [
            (k, v if isinstance(v, str) or v is None else json.dumps(v)) for k, v in fields.items()
        ]
        body = www_form(pairs).encode()
        headers["Content-Type"] = FORM
    r = h.request(method, path, content=body, headers=headers)
    assert r.status_code == status, (method, path, r.status_code, r.headers.get(ERROR_HEADER))
    return json.loads(r.content) if r.status_code == 200 and r.content else r


def python_distem(port: int):  # type: ignore[no-untyped-def]
    """The PyPI ``distem`` client (0.0.5) on the daemon at ``port``, never through a
    proxy of the environment."""
    import distem

    d = distem.Distem(serveraddr="127.0.0.1", port=port)
    d.proxies = {}
    d.client.trust_env = False
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def distemd(
    state: Path, tag: str | None = None, *extra: str, host: str = "127.0.0.1"
) -> Iterator[int]:
    """Run ``distemd -d --distem-compat`` on a free port with its state in ``state``;
    yields the port. On exit: ``DELETE /pnodes`` (cleans the pnode), then the process
    is stopped by its pid."""
    port = free_port()
    cmd = [
        str(Path(sys.executable).with_name("distemd")),
        "-d",
        "--distem-compat",
        "--port",
        str(port),
        "--state-dir",
        str(state),
        "--tag",
        tag or pydistem.testing.unique_tag(),
        *extra,
    ]
    state.mkdir(parents=True, exist_ok=True)
    log = (state / "distemd.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex((host, port)) == 0:
                    break
            assert proc.poll() is None, (state / "distemd.log").read_text()
            assert time.monotonic() < deadline, "distemd did not listen within 30 s"
            time.sleep(0.1)
        yield port
    finally:
        with contextlib.suppress(httpx.HTTPError):
            httpx.delete(f"http://{host}:{port}/pnodes", timeout=300, trust_env=False)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
