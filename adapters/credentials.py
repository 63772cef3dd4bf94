"""Testbed credentials from their usual places, kept out of every log and message.

A :class:`Secret` prints as ``'***'`` (``str``, ``repr``, f-strings), so passing one
to a logger, a progress line, an exception or a saved reservation cannot leak it;
``.reveal()`` is called only where the SDK takes it. :func:`redact` removes known
secret values from text that came back from elsewhere (an SDK's error message).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pydistem.errors import ValidationError

_KNOWN: set[str] = set()


class Secret:
    """A credential value that never shows itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= 4:
            _KNOWN.add(value)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "***"

    __repr__ = __str__

    def __bool__(self) -> bool:
        return bool(self._value)


def redact(text: str) -> str:
    """``text`` with every secret value loaded in this process replaced by ``***``."""
    for value in _KNOWN:
        text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class Grid5000Credentials:
    """What ``~/.python-grid5000.yaml`` holds (python-grid5000's file): the API login,
    its password, optionally the API base URL and whether to verify TLS."""

    username: str | None = None
    password: Secret | None = None
    uri: str | None = None
    verify_ssl: bool | None = None
    source: str | None = None


def grid5000_credentials(path: Path | None = None) -> Grid5000Credentials:
    """Read ``$HOME/.python-grid5000.yaml`` (or ``path``); empty when absent.

    Raises ValidationError naming the file when it is not a YAML mapping."""
    p = path or Path(os.environ.get("HOME", "~")).expanduser() / ".python-grid5000.yaml"
    if not p.is_file():
        return Grid5000Credentials()
    try:
        doc: Any = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationError(str(p), f"cannot read: {type(exc).__name__}") from None
    if not isinstance(doc, dict):
        raise ValidationError(str(p), "must be a mapping (username, password, uri)")
    password = doc.get("password")
    verify = doc.get("verify_ssl")
    return Grid5000Credentials(
        username=str(doc["username"]) if doc.get("username") else None,
        password=Secret(str(password)) if password else None,
        uri=str(doc["uri"]) if doc.get("uri") else None,
        verify_ssl=bool(verify) if verify is not None else None,
        source=str(p),
    )
