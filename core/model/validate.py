"""Turn raw data (JSON, YAML, CLI) into model objects, with errors that name the field."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from pydistem.errors import ValidationError

M = TypeVar("M", bound=pydantic.BaseModel)


def field_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    """``("vifaces", 0, "address")`` under ``vnodes[2]`` -> ``vnodes[2].vifaces[0].address``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def parse(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate ``data`` as ``model``; raise ValidationError naming the first bad field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise to_validation_error(exc, prefix) from None
    except ValidationError as exc:  # raised by our own validators
        raise ValidationError(field_path(prefix, (exc.field,)), exc.reason) from None


def to_validation_error(exc: pydantic.ValidationError, prefix: str = "") -> ValidationError:
    """The first error of a pydantic failure as our ValidationError(field, reason)."""
    err = exc.errors()[0]
    loc: tuple[int | str, ...] = tuple(err.get("loc", ()))
    ours = (err.get("ctx") or {}).get("error")
    if isinstance(ours, ValidationError):
        if not loc or loc[-1] != ours.field:
            loc = (*loc, ours.field)
        return ValidationError(field_path(prefix, loc) or "input", ours.reason)
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown key (see docs/platform-file.md for the keys)"
    elif err.get("type") == "missing":
        msg = "is required"
    return ValidationError(field_path(prefix, loc) or "input", msg)
