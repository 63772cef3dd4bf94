"""The coordinator's routes are prepared when the app is built, not on the first call."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import pytest
from fastapi.testclient import TestClient

from pydistem.coordinator.app import create_app


def test_first_request_builds_no_route_state(monkeypatch: pytest.MonkeyPatch) -> None:
    lazy = getattr(fastapi.routing, "_EffectiveRouteContext", None)
    if lazy is None:
        pytest.skip("this FastAPI prepares included routes eagerly")
    built: list[str] = []
    original = lazy.from_api_route.__func__

    def counting(cls: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(str(kwargs.get("original_route", args[0] if args else "?")))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(lazy, "from_api_route", classmethod(counting))
    app = create_app(None, None, distem_compat=True)  # type: ignore[arg-type]
    assert built, "create_app prepared no route: the check below would prove nothing"
    built.clear()
    client = TestClient(app)
    assert client.get("/api/v1/no-such-route").status_code == 404  # walks every router
    assert client.get("/api/v1/health").status_code == 200
    assert built == []
