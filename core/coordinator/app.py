"""The coordinator's REST application (FastAPI): auth, error shape, routers.

Native API under ``/api/v1``; every route needs ``Authorization: Bearer <token>``
except ``/health``. Every error answers the one JSON shape of
:meth:`pydistem.errors.PydistemError.to_dict`.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from pydistem import __version__
from pydistem.coordinator.routes import events, limits, platform, pnodes, vnetworks, vnodes, vroutes
from pydistem.coordinator.service import Coordinator
from pydistem.errors import NotFound, PydistemError, Unauthorized, ValidationError

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the one JSON shape (shared by the agent's app)."""

    @app.exception_handler(PydistemError)
    async def _ours(request: Request, exc: PydistemError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc.message)
        return JSONResponse(exc.to_dict(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _body(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        err = ValidationError(".".join(loc) or "body", str(first.get("msg", "invalid body")))
        return JSONResponse(err.to_dict(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            err: PydistemError = NotFound("route", f"{request.method} {request.url.path}")
        else:
            err = PydistemError(str(exc.detail))
            err.status = exc.status_code  # type: ignore[misc]
        return JSONResponse(err.to_dict(), status_code=exc.status_code)


def require_token(app: FastAPI, token: str | None, prefix: str) -> None:
    """Refuse every call under ``prefix`` without the bearer token (constant-time check)."""
    if token:
        app.add_middleware(BearerToken, token=token, prefix=prefix)


class BearerToken:
    """ASGI middleware answering 401 to a call under ``prefix`` (but ``/health``) whose
    ``Authorization`` is not ``Bearer <token>``. Plain ASGI rather than Starlette's
    ``BaseHTTPMiddleware``, which runs every request through an extra task and stream."""

    def __init__(self, app: ASGIApp, token: str, prefix: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        guarded = path.startswith(self.prefix) and not path.endswith("/health")
        if scope["type"] == "http" and guarded:
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                err = Unauthorized("missing or wrong bearer token (see docs/api.md#auth)")
                await JSONResponse(err.to_dict(), status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    coordinator: Coordinator,
    token: str | None,
    distem_compat: bool = False,
    compat_allow: list[str] | None = None,
) -> FastAPI:
    """The coordinator app; ``token=None`` disables auth (in-process tests only).

    ``distem_compat`` also serves Distem 1.x's routes at its paths, without token, to
    callers in ``compat_allow`` (CIDRs; loopback by default); see docs/coming-from-distem.md.
    """
    app = FastAPI(
        title="pydistem coordinator",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.coordinator = coordinator
    install_error_handlers(app)
    require_token(app, token, API_PREFIX)

    @app.get(f"{API_PREFIX}/health", tags=["daemon"])
    def health() -> dict[str, object]:
        allow = getattr(app.state, "distem_compat_allow", None)
        return {"ok": True, "version": __version__, "distem_compat": allow}

    for module in (pnodes, vroutes, vnetworks, vnodes, limits, platform, events):
        app.include_router(module.router, prefix=API_PREFIX)
    if distem_compat:
        import ipaddress

        from pydistem.coordinator.compat import router as compat_router

        allow = compat_allow if compat_allow is not None else ["127.0.0.0/8", "::1/128"]
        # a bad CIDR fails here, at startup, not on every call
        app.state.distem_compat_allow = [str(ipaddress.ip_network(a, strict=False)) for a in allow]
        app.include_router(compat_router)
    prepare_routes(app)
    return app


def prepare_routes(app: FastAPI) -> None:
    """Build every route's matching state now rather than on the first request.

    FastAPI (0.16x) prepares the routes of an included router lazily, when a request
    first walks through it: 10-20 ms paid by the first ``POST /platform`` of a new
    daemon. Asking each top-level route to match a path no route serves walks them all.
    """
    scope = {"type": "http", "method": "GET", "path": "/-/prepare", "root_path": "", "headers": []}
    for route in app.router.routes:
        route.matches(dict(scope))
