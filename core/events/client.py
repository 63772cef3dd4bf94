"""The event calls of :class:`pydistem.Client`: the Ruby Distem names
(``event_trace_add``, ``event_trace_string_add``, ``event_trace_file_add``,
``event_random_add``, ``event_manager_start``, ``event_manager_stop``) and the native
ones (``events_add``, ``churn_add``, ``events_start``, ``events_stop``, ``events_log``...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydistem.errors import ValidationError


class EventsMixin:
    """Mixed into :class:`pydistem.client.Client` (which provides ``_request``)."""

    def _request(self, method: str, path: str, body: Any = None, *, wait: float = 0.0) -> Any:
        raise NotImplementedError  # provided by Client

    # ------------------------------------------------------------------ native
    def events_add(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Schedule events (and ``{'churn': {...}}`` items), e.g.
        ``{'at': '1s', 'action': 'traffic', 'vnode': 'n1', 'viface': 'if0',
        'bandwidth': '10mbit'}``. All or nothing: ValidationError names the bad field
        (unknown vnode or viface, negative time, bad unit). Returns them with their ids."""
        return list(self._request("POST", "/events", {"events": events})["events"])

    def churn_add(
        self,
        vnodes: list[str],
        rate: float,
        downtime: str | float,
        seed: int,
        until: str | float,
        start: str | float = 0,
        mode: str = "stop",
    ) -> list[dict[str, Any]]:
        """Schedule random failures of ``vnodes`` (``rate`` failures per second each,
        mean ``downtime``) until ``until``; the same ``seed`` gives the same schedule."""
        churn = {
            "vnodes": vnodes, "rate": rate, "downtime": downtime, "seed": seed,
            "until": until, "start": start, "mode": mode,
        }  # fmt: skip
        return self.events_add([{"churn": churn}])

    def events_info(self) -> dict[str, Any]:
        """The schedule and the player's state: ``{'running', 'run', 'elapsed',
        'events': [...], 'generators': [...]}``."""
        return dict(self._request("GET", "/events"))

    def events_clear(self) -> int:
        """Stop the player and forget every event; returns how many were forgotten."""
        return int(self._request("DELETE", "/events")["removed"])

    def event_remove(self, event_id: int) -> dict[str, Any]:
        """Forget one scheduled event; raises NotFound."""
        return dict(self._request("DELETE", f"/events/{int(event_id)}"))

    def events_start(self) -> dict[str, Any]:
        """Play the schedule from time 0 (a new run); Conflict if it is running."""
        return dict(self._request("POST", "/events/start", {}))

    def events_stop(self) -> dict[str, Any]:
        """Stop the run in progress; the schedule stays (start replays it)."""
        return dict(self._request("POST", "/events/stop", {}, wait=60))

    def events_log(self, run: int | None = None, since: int = 0) -> list[dict[str, Any]]:
        """What was applied when: entries with ``planned``, ``applied``, ``delay``
        (seconds since the run started), ``ok`` and ``error``; ``run`` picks one run,
        ``since`` the entries after that ``seq``."""
        path = f"/events/log?since={int(since)}" + (f"&run={int(run)}" if run is not None else "")
        return list(self._request("GET", path)["entries"])

    # ------------------------------------------------------------------ Ruby names
    def event_trace_add(
        self, resource: dict[str, Any], event_type: str, trace: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Distem's trace: ``trace = {'<seconds>': value}`` on ``resource``
        (``{'type': 'viface', 'vnodename': 'n1', 'vifacename': 'if0'}``)."""
        body = {"resource": resource, "event_type": event_type, "trace": trace}
        return list(self._request("POST", "/events/trace", body)["events"])

    def event_trace_string_add(
        self, resource: dict[str, Any], event_type: str, trace_string: str
    ) -> list[dict[str, Any]]:
        """Distem's trace as text: lines ``<seconds> <value>``."""
        body = {"resource": resource, "event_type": event_type, "trace_string": trace_string}
        return list(self._request("POST", "/events/trace", body)["events"])

    def event_trace_file_add(
        self, resource: dict[str, Any], event_type: str, trace_file: str | Path
    ) -> list[dict[str, Any]]:
        """Distem's trace file (lines ``<seconds> <value>``), read here."""
        try:
            text = Path(trace_file).read_text()
        except OSError as exc:
            raise ValidationError(
                "trace_file", f"cannot read {trace_file}: {exc.strerror}"
            ) from None
        return self.event_trace_string_add(resource, event_type, text)

    def event_random_add(
        self,
        resource: dict[str, Any],
        event_type: str,
        generator: dict[str, Any],
        first_value: str | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Distem's random generator, e.g. churn with
        ``{'date': {'distribution': 'uniform', 'min': 1, 'max': 3}}``; ``seed`` (ours)
        makes it reproducible (a random one is chosen and returned otherwise)."""
        body = {
            "resource": resource, "event_type": event_type, "generator": generator,
            "first_value": first_value, "seed": seed,
        }  # fmt: skip
        return dict(self._request("POST", "/events/random", body))

    def event_manager_start(self) -> dict[str, Any]:
        """Distem's name for :meth:`events_start`."""
        return self.events_start()

    def event_manager_stop(self) -> int:
        """Distem's ``event_manager_stop``: stop AND forget the schedule (:meth:`events_clear`)."""
        return self.events_clear()
