"""Docs that are tested (STYLE habit 13): what the code offers must have its entry in docs/.

A REST route of the coordinator or of the agent, a platform-file key, an entry point of
the plugin groups, or an error code without its entry fails here, naming what is missing.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pydistem import errors
from pydistem.model.platform_file import TOP_LEVEL_KEYS
from pydistem.model.specs import SshKey, Traffic, VFilesystem, VIface, VNetwork, VNode

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PLUGIN_GROUPS = ("pydistem.runtimes", "pydistem.shapers", "pydistem.limits", "pydistem.testbeds")


def _read(name: str) -> str:
    path = DOCS / name
    assert path.is_file(), f"docs/{name} is missing"
    return path.read_text()


def _documented(text: str, entry: str) -> bool:
    """``entry`` (``POST /api/v1/vnodes``) occurs, not merely as the start of a longer path."""
    return re.search(re.escape(entry) + r"(?![\w/{}.-])", text) is not None


def _section(text: str, heading: str) -> str:
    """The body of the first markdown section whose heading contains ``heading``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"(#+)\s", line)
        if m and heading in line:
            level = len(m.group(1))
            body = []
            for nxt in lines[i + 1 :]:
                n = re.match(r"(#+)\s", nxt)
                if n and len(n.group(1)) <= level:
                    break
                body.append(nxt)
            return "\n".join(body)
    raise AssertionError(f"docs/platform-file.md has no section titled like {heading!r}")


def _table_keys(section: str) -> set[str]:
    """The backticked first cells of the table rows of a section: ``| `key` | ...``."""
    return set(re.findall(r"^\|\s*`([^`]+)`\s*\|", section, re.MULTILINE))


# ---------------------------------------------------------------------------- routes


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(METHOD, path) of every route, into included routers whatever FastAPI's layout."""
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path is not None and methods:
            for method in sorted(set(methods) - {"HEAD"}):
                yield method, prefix + path
        sub = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps routers whole
        if sub is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(sub.routes, prefix + str(getattr(context, "prefix", "") or ""))


def coordinator_routes() -> set[tuple[str, str]]:
    from pydistem.coordinator.app import create_app
    from pydistem.coordinator.service import Coordinator
    from pydistem.state.store import Store

    coordinator = Coordinator(Store(":memory:"), connect=None, local_agent=None)  # type: ignore[arg-type]
    try:
        app = create_app(coordinator, token=None)
        found = set(_walk(app.routes))
        schema = app.openapi()["paths"]
        found |= {(m.upper(), p) for p, ops in schema.items() for m in ops}
    finally:
        coordinator.close()
    return found


def agent_routes() -> set[tuple[str, str]]:
    from pydistem.agent import app

    return set(_walk(app.router.routes, app.PREFIX))


def test_route_walk_sees_the_whole_coordinator_app() -> None:
    routes = coordinator_routes()
    for known in [
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/vnodes/start"),
    ]:
        assert known in routes, f"the route walk missed {known}: this test would be blind"
    assert len(routes) >= 25


def test_every_coordinator_route_is_in_api_md() -> None:
    text = _read("api.md")
    missing = sorted(
        f"{m} {p}" for m, p in coordinator_routes() if not _documented(text, f"{m} {p}")
    )
    assert not missing, f"coordinator routes undocumented in docs/api.md: {missing}"


def test_every_agent_route_is_in_api_md() -> None:
    routes = agent_routes()
    assert ("POST", "/api/v1/agent/clean") in routes, "the agent route walk is blind"
    text = _read("api.md")
    missing = sorted(f"{m} {p}" for m, p in routes if not _documented(text, f"{m} {p}"))
    assert not missing, f"agent routes undocumented in docs/api.md: {missing}"


# ---------------------------------------------------------------------------- platform file

#: model -> the heading of its section in docs/platform-file.md
SECTIONS: dict[type[BaseModel], str] = {
    VNetwork: "## vnetworks",
    VNode: "## vnodes",
    VFilesystem: "`vfilesystem`",
    SshKey: "`ssh_key`",
    VIface: "## vifaces",
    Traffic: "## Traffic",
}


@pytest.mark.parametrize("model", list(SECTIONS), ids=lambda m: m.__name__)
def test_every_model_field_is_in_platform_file_md(model: type[BaseModel]) -> None:
    heading = SECTIONS[model]
    rows = _table_keys(_section(_read("platform-file.md"), heading))
    missing = sorted(set(model.model_fields) - rows)
    assert not missing, (
        f"{model.__name__} fields without a table row in the section {heading!r} "
        f"of docs/platform-file.md: {missing}"
    )


def test_every_top_level_key_is_in_platform_file_md() -> None:
    rows = _table_keys(_section(_read("platform-file.md"), "## Top level"))
    missing = sorted(set(TOP_LEVEL_KEYS) - rows)
    assert not missing, (
        f"top-level platform-file keys undocumented in docs/platform-file.md: {missing}"
    )


def test_vnode_shorthands_are_in_platform_file_md() -> None:
    text = _read("platform-file.md")
    for needle in ("node-[1-50]", "`image`", "`shared`", "host: auto", "`input`", "`output`"):
        assert needle in text, f"docs/platform-file.md does not explain {needle}"


# ---------------------------------------------------------------------------- entry points


def entry_points() -> dict[str, list[str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    section = cfg["options.entry_points"]
    out = {}
    for group in PLUGIN_GROUPS:
        lines = section.get(group, "").strip().splitlines()
        out[group] = [line.split("=", 1)[0].strip() for line in lines if "=" in line]
    return out


def test_every_entry_point_is_in_the_docs() -> None:
    eps = entry_points()
    assert eps["pydistem.runtimes"], "setup.cfg declares no runtime: is the parsing blind?"
    plugins = _read("plugins.md")
    everything = "\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))
    missing = []
    for group, names in eps.items():
        if f"`{group}`" not in plugins:
            missing.append(f"group {group} (docs/plugins.md)")
        for name in names:
            if f"`{name}`" not in plugins or f"`{name}`" not in everything:
                missing.append(f"{group}:{name}")
    assert not missing, f"entry points undocumented in docs/plugins.md: {missing}"


# ---------------------------------------------------------------------------- errors


def error_classes() -> list[type[errors.PydistemError]]:
    return [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.PydistemError)
        and cls.__module__ == errors.__name__
    ]


def test_every_error_code_is_in_api_md() -> None:
    classes = error_classes()
    assert len(classes) >= 10, "the error walk is blind"
    rows = {
        line for line in _read("api.md").splitlines() if re.match(r"^\|\s*`[a-z_]+`\s*\|", line)
    }
    missing = []
    for cls in classes:
        wanted = (f"`{cls.code}`", f"`{cls.__name__}`", f"| {cls.status} |")
        if not any(
            line.startswith(f"| `{cls.code}` |") and all(w in line for w in wanted) for line in rows
        ):
            missing.append(f"{cls.code} ({cls.__name__}, HTTP {cls.status})")
    assert not missing, (
        f"error codes without a row `| code | Class | status |` in docs/api.md: {missing}"
    )


# ---------------------------------------------------------------------------- the index


def test_every_page_is_in_the_index_and_every_link_resolves() -> None:
    index = _read("index.md")
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md")
    unlisted = [p for p in pages if f"]({p})" not in index]
    assert not unlisted, f"docs pages not listed in docs/index.md: {unlisted}"
    broken = []
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([\w.-]+\.md)(?:#[^)]*)?\)", page.read_text()):
            if not (DOCS / target).is_file():
                broken.append(f"{page.name} -> {target}")
    assert not broken, f"links to missing docs pages: {broken}"
