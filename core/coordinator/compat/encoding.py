"""Distem's wire encoding: form bodies carrying JSON text in fields, and its error convention.

Pure functions (no Coordinator): parse a raw form body, decode a JSON field, lower-case
``desc`` keys, and turn any error into Distem's ``X-Application-Error-Code`` answer.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from fastapi.responses import JSONResponse

from pydistem.errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    PydistemError,
    Unsupported,
    ValidationError,
)

ERROR_HEADER = "X-Application-Error-Code"


class DistemError(Exception):
    """An error answered the Distem way: ``status``, Ruby class short ``name``, ``message``."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(f"{name} {message}")
        self.status = status
        self.name = name
        self.message = message


def invalid(message: str) -> DistemError:
    return DistemError(400, "InvalidParameterError", message)


def not_found(message: str) -> DistemError:
    return DistemError(404, "ResourceNotFoundError", message)


def not_implemented(feature: str, why: str | None = None) -> DistemError:
    """501 ``NotImplementedError`` naming the feature (and, given, what is missing)."""
    text = (
        f"{feature}: {why}" if why else f"{feature} is not served by pydistem's Distem compat yet"
    )
    return DistemError(501, "NotImplementedError", text)


def parse_form(body: bytes | str) -> dict[str, str | None]:
    """Form fields of a raw body; absent, bare (``key``) and empty (``key=``) all give None.

    A repeated key keeps its last value, as Rack does.
    """
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    fields = parse_qs(text, keep_blank_values=True)
    return {k: (v[-1] if v and v[-1] != "" else None) for k, v in fields.items()}


def json_field(form: dict[str, str | None], key: str, default: Any = None) -> Any:
    """The JSON value inside form field ``key``; ``default`` when not given.

    Raises DistemError 400 ``ParserError`` on bad JSON (as Distem's JSON::ParserError).
    """
    raw = form.get(key)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise DistemError(400, "ParserError", f"{key}: {exc}") from None


def json_or_string(form: dict[str, str | None], key: str) -> Any:
    """JSON inside ``key``, or the raw text when it is not JSON (``target=localhost``)."""
    raw = form.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def downkeys(value: Any) -> Any:
    """Lower-case every dict key, recursively (through lists too)."""
    if isinstance(value, dict):
        return {str(k).lower(): downkeys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [downkeys(v) for v in value]
    return value


def parse_bool(value: Any) -> bool:
    """Distem's ``parse_bool``: None, ``""``, ``no``, ``false``, ``disable``, ``0`` are false."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() not in ("", "no", "false", "disable", "0")


def as_number(field: str, value: Any) -> float:
    """A number that may arrive as a string (``"60"``)."""
    if isinstance(value, bool):
        raise invalid(f"{field}: {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise invalid(f"{field}: {value!r} is not a number") from None


def names_list(value: Any, field: str = "names") -> list[str] | None:
    """A JSON array of names (or one name); None when not given."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise invalid(f"{field}: a JSON array of names")
    return value


def translate(exc: PydistemError) -> DistemError:
    """Map a pydistem error to Distem's exception class and HTTP status."""
    if isinstance(exc, AlreadyExists):
        return DistemError(400, "AlreadyExistingResourceError", exc.message)
    if isinstance(exc, ValidationError):
        return DistemError(400, "InvalidParameterError", exc.message)
    if isinstance(exc, NotFound):
        return DistemError(404, "ResourceNotFoundError", exc.message)
    if isinstance(exc, Conflict):
        return DistemError(404, "BusyResourceError", exc.message)
    if isinstance(exc, Unsupported):
        return DistemError(501, "NotImplementedError", exc.message)
    return DistemError(500, "ShellError", exc.message)


def header_value(name: str, message: str) -> str:
    """``<Class> <message> |`` on one line, latin-1 safe (HTTP header rules).

    Distem sends ``... | `` with a trailing space; HTTP forbids trailing whitespace in
    a field value (h11 refuses to send it), and receivers strip it anyway.
    """
    text = " ".join(f"{name} {message}".split())
    return text.encode("latin-1", "replace").decode("latin-1") + " |"


def error_response(err: DistemError) -> JSONResponse:
    """Distem's error answer: the status, the error header and the body ``{}``."""
    return JSONResponse(
        {}, status_code=err.status, headers={ERROR_HEADER: header_value(err.name, err.message)}
    )
