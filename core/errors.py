"""The one error tree of pydistem.

Every error raised on purpose derives from :class:`PydistemError`. Leaves carry
data (the field, the object kind, the kernel operation) so that the REST layer
can map each class to one HTTP status and the client can map it back.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PydistemError(Exception):
    """Root of every pydistem error. ``status`` is the HTTP status it maps to."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The JSON error shape every route answers with (see docs/api.md)."""
        return {"ok": False, "status": self.status, "error": self.code, "message": self.message}


class ValidationError(PydistemError, ValueError):
    """Bad input: ``field`` names what was wrong (dotted path), ``reason`` why.

    It is also a ValueError so that pydantic validators may raise it and keep
    the location of the field in the document.
    """

    status = 400
    code = "validation"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field, "reason": self.reason}


class AlreadyExists(ValidationError):
    """A name that must be unique is already taken."""

    code = "already_exists"

    def __init__(self, kind: str, name: str, field: str = "name") -> None:
        super().__init__(field, f"{kind} {name!r} already exists")
        self.kind = kind
        self.name = name


class NotFound(PydistemError):
    """A named object does not exist."""

    status = 404
    code = "not_found"

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} not found")
        self.kind = kind
        self.name = name

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "kind": self.kind, "name": self.name}


class Conflict(PydistemError):
    """The object exists but is in the wrong state for the operation (e.g. busy)."""

    status = 409
    code = "conflict"


class Unauthorized(PydistemError):
    """Missing or wrong bearer token."""

    status = 401
    code = "unauthorized"


class Forbidden(PydistemError):
    """The caller may not use this route (e.g. Distem-compat route from outside the allowlist)."""

    status = 403
    code = "forbidden"


class Unsupported(PydistemError):
    """A feature the host cannot provide (missing kernel module, missing tool)."""

    status = 501
    code = "unsupported"


class KernelError(PydistemError):
    """A kernel operation failed: ``op`` says which, ``errno`` the kernel's answer."""

    status = 500
    code = "kernel"

    def __init__(self, op: str, message: str, errno: int | None = None) -> None:
        super().__init__(f"{op}: {message}")
        self.op = op
        self.errno = errno

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "op": self.op, "errno": self.errno}


class AgentUnreachable(PydistemError):
    """A pnode agent did not answer."""

    status = 502
    code = "agent_unreachable"

    def __init__(self, pnode: str, reason: str) -> None:
        super().__init__(f"pnode {pnode}: {reason}")
        self.pnode = pnode


class ReservationError(PydistemError):
    """A testbed refused or failed a reservation."""

    status = 502
    code = "reservation"

    def __init__(self, testbed: str, reason: str) -> None:
        super().__init__(f"{testbed}: {reason}")
        self.testbed = testbed


_BY_CODE: dict[str, type[PydistemError]] = {}


def _register(cls: type[PydistemError]) -> None:
    _BY_CODE[cls.code] = cls
    for sub in cls.__subclasses__():
        _register(sub)


_register(PydistemError)


def from_dict(data: dict[str, Any], status: int) -> PydistemError:
    """Rebuild a typed error from the JSON error shape (used by the clients).

    The class is chosen by ``error`` (the code); the extra keys (``field``,
    ``kind``, ``op``...) become attributes, so ``err.field`` works client-side.
    """
    cls = _BY_CODE.get(str(data.get("error", "error")), PydistemError)
    err = cls.__new__(cls)
    PydistemError.__init__(err, str(data.get("message") or f"HTTP {status}"))
    for key, value in data.items():
        if key not in ("ok", "status", "error", "message"):
            setattr(err, key, value)
    return err
