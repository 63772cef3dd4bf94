"""The ``testbed:`` options of ``adapter: g5k``, validated before anything is reserved
(the table in docs/adapters.md): site or cluster, nodes or a raw OAR expression,
walltime, environment, g5k-subnets and KaVLAN requests, access gateway, timeouts, and
the bootstrap settings of the machines."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pydistem.adapters.base import Options
from pydistem.adapters.prepare import BootstrapSettings
from pydistem.errors import ValidationError
from pydistem.model.machines import Machine

_WALLTIME = re.compile(r"^(\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?$")
_SITE = re.compile(r"^[a-z][a-z0-9-]*$")
_SUBNETS = re.compile(r"^slash_(\d+)=(\d+)$")


def walltime_seconds(value: Any, field: str = "walltime") -> int:
    """``"1:30:00"``, ``"2"`` (hours), ``"0:45"`` or a number of seconds -> seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        m = _WALLTIME.match(str(value).strip())
        if not m:
            raise ValidationError(field, f"{value!r} is not H[:M[:S]] (e.g. 1:30:00)")
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        if mi > 59 or s > 59:
            raise ValidationError(field, f"{value!r}: minutes and seconds go up to 59")
        seconds = h * 3600 + mi * 60 + s
    if seconds <= 0:
        raise ValidationError(field, "must be positive")
    return seconds


class G5kOptions(Options):
    """The ``testbed:`` keys of ``adapter: g5k`` (table in docs/adapters.md)."""

    site: str | None = None
    cluster: str | None = None
    nodes: int = Field(2, ge=1, le=1000)
    resources: str | None = None
    walltime: str | int = "1:00:00"
    environment: str | None = None
    environment_file: str | None = None
    job_types: list[str] = Field(default_factory=list)
    properties: str | None = None
    queue: str | None = None
    reservation: str | None = None
    name: str | None = None
    subnets: str | None = None
    kavlan: Literal["kavlan", "kavlan-local", "kavlan-global"] | None = None
    user: str | None = None
    gateway: str = "auto"
    api_uri: str | None = None
    key: Path | None = None
    wait_timeout: float = Field(3600, gt=0)
    deploy_timeout: float = Field(1800, gt=0)
    api_retries: int = Field(4, ge=1, le=20)
    bootstrap: BootstrapSettings = Field(default_factory=BootstrapSettings)

    @field_validator("site", "cluster")
    @classmethod
    def _uid(cls, v: str | None) -> str | None:
        if v is not None and not _SITE.match(v):
            raise ValueError(f"{v!r} is not a Grid'5000 uid (lower-case, e.g. rennes)")
        return v

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, v: str | int) -> str | int:
        walltime_seconds(v)
        return v

    @field_validator("subnets", mode="before")
    @classmethod
    def _subnets(cls, v: Any) -> str | None:
        if v is None:
            return None
        text = str(v).strip()
        short = re.match(r"^/(\d+)$", text)  # `/22`: one /22
        if short:
            text = f"slash_{short.group(1)}=1"
        m = _SUBNETS.match(text)
        if not m or not 16 <= int(m.group(1)) <= 22 or int(m.group(2)) < 1:
            raise ValueError(
                f"{v!r} is not a g5k-subnets request like slash_22=1 (or /22): "
                "N subnets of /16 to /22"
            )
        return text

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, v: str) -> str:
        if v not in ("auto", "none"):
            Machine.parse(v, "gateway")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> G5kOptions:
        if self.site is None and self.cluster is None:
            raise ValidationError("site", "give `site` (e.g. rennes) or `cluster`")
        if self.resources is not None and (
            self.cluster is not None or "nodes" in self.model_fields_set
        ):
            raise ValidationError(
                "resources", "a raw OAR expression replaces `cluster` and `nodes`: give one"
            )
        if self.environment and self.environment_file:
            raise ValidationError("environment_file", "give `environment` or a file, not both")
        if self.kavlan and not (self.environment or self.environment_file):
            raise ValidationError("kavlan", "a KaVLAN needs a deployed `environment`")
        if self.kavlan == "kavlan-local" and self.gateway in ("auto", "none"):
            raise ValidationError(
                "kavlan",
                "kavlan-local is isolated: its nodes answer only through the VLAN's own SSH "
                "gateway (kavlan-<id> on the site), which pydistem does not chain behind "
                "access.grid5000.fr; use kavlan (routed), or give that "
                "gateway as `gateway` (from a frontend)",
            )
        if self.key is not None and not self.key.is_file():
            raise ValidationError("key", f"{self.key} is not a readable file")
        return self

    @property
    def deploys(self) -> bool:
        return bool(self.environment or self.environment_file)

    @property
    def subnet_request(self) -> tuple[int, int] | None:
        """``subnets`` as (prefix length, count), e.g. (22, 1)."""
        m = _SUBNETS.match(self.subnets or "")
        return (int(m.group(1)), int(m.group(2))) if m else None
