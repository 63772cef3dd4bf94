"""Platform files (YAML): a whole platform in one document, see docs/platform-file.md.

``load_platform`` reads and validates the document and expands counted groups
(``node-[1-50]``) into single vnodes. Cross-object checks (references, address
uniqueness) happen in the coordinator's planner, the one place that knows the
existing platform too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from pydistem.errors import ValidationError
from pydistem.events.model import Churn, Event, parse_items
from pydistem.model.daemon import DaemonSettings
from pydistem.model.names import expand_group
from pydistem.model.specs import VNetwork, VNode
from pydistem.model.validate import parse

TOP_LEVEL_KEYS = ("vnetworks", "vnodes", "vroutes", "events", "testbed", "daemon")
VROUTE_KEYS = ("source", "destination", "gateway")
#: a vnetwork ``address`` filled from the testbed's reserved subnets (pydistem.adapters.fit)
TESTBED_ADDRESS = re.compile(r"^testbed(?::([1-9]\d*))?$")


class Platform(BaseModel):
    """A validated platform: vnetworks and (expanded) vnodes, plus testbed/daemon options."""

    model_config = ConfigDict(extra="forbid")

    vnetworks: list[VNetwork] = Field(default_factory=list)
    vnodes: list[VNode] = Field(default_factory=list)
    events: list[Event | Churn] = Field(default_factory=list)
    #: ``complete``, or routes ``{source, destination, gateway}`` (gateway: vnode or address)
    vroutes: str | list[dict[str, str]] | None = None
    testbed: dict[str, Any] | None = None
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)


def platform_from_dict(doc: Any, source: str = "platform") -> Platform:
    """Validate a platform document already parsed from YAML or JSON."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ValidationError(
            source, "a platform file is a mapping with keys vnetworks, vnodes, events"
        )
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            raise ValidationError(str(key), f"unknown top-level key (known: {TOP_LEVEL_KEYS})")
    for i, item in enumerate(_list(doc, "vnetworks")):
        addr = item.get("address") if isinstance(item, dict) else None
        if isinstance(addr, str) and TESTBED_ADDRESS.match(addr.strip()):
            raise ValidationError(
                f"vnetworks[{i}].address",
                f"{addr!r} is a subnet the testbed reserves: only `distem deploy` of a file "
                "whose `testbed:` section reserves subnets fills it in",
            )
    vnetworks = [
        parse(VNetwork, item, f"vnetworks[{i}]") for i, item in enumerate(_list(doc, "vnetworks"))
    ]
    vnodes: list[VNode] = []
    for i, item in enumerate(_list(doc, "vnodes")):
        if not isinstance(item, dict):
            raise ValidationError(f"vnodes[{i}]", "must be a mapping")
        pattern = item.get("name")
        if not isinstance(pattern, str):
            raise ValidationError(f"vnodes[{i}].name", "is required (a name or 'node-[1-50]')")
        for name in expand_group(pattern, f"vnodes[{i}].name"):
            vnodes.append(parse(VNode, {**item, "name": name}, f"vnodes[{i}]"))
    vroutes = _vroutes(doc.get("vroutes"))
    for key in ("testbed", "daemon"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise ValidationError(key, "must be a mapping")
    daemon = parse(DaemonSettings, doc.get("daemon") or {}, "daemon")
    events = parse_items(doc.get("events"), "events")
    return Platform(
        vnetworks=vnetworks,
        vnodes=vnodes,
        events=events,
        vroutes=vroutes,
        testbed=doc.get("testbed"),
        daemon=daemon,
    )


def _vroutes(value: Any) -> str | list[dict[str, str]] | None:
    """``vroutes: complete`` or a list of ``{source, destination, gateway}``."""
    if value is None or value == "complete":
        return value  # type: ignore[no-any-return]
    if not isinstance(value, list):
        raise ValidationError("vroutes", "'complete' or a list of {source, destination, gateway}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValidationError(f"vroutes[{i}]", "must be a mapping")
        for key in item:
            if key not in VROUTE_KEYS:
                raise ValidationError(f"vroutes[{i}].{key}", f"unknown key (known: {VROUTE_KEYS})")
        for key in VROUTE_KEYS:
            if not isinstance(item.get(key), str) or not item[key]:
                raise ValidationError(f"vroutes[{i}].{key}", "is required (a name or address)")
        out.append({k: str(item[k]) for k in VROUTE_KEYS})
    return out


def load_platform(path: str | Path) -> Platform:
    """Read a YAML platform file; ValidationError names the file's bad field."""
    return platform_from_dict(load_document(path), str(path))


def load_document(path: str | Path) -> Any:
    """The YAML document of a platform file, not validated yet (ValidationError when it
    cannot be read or parsed)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ValidationError("file", f"cannot read {p}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError("file", f"{p} is not valid YAML: {exc}") from None
    return doc


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise ValidationError(key, "must be a list")
    return value
