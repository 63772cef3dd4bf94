"""The agent's journal: every kernel object it creates, on disk, before it exists.

One JSON object a line, appended and fsynced: ``{"op": "add", "kind": "link",
"id": "pdv1a2b", ...}`` when an object is about to be created, ``{"op": "del", ...}``
once it is gone. ``live()`` replays the file: what was added and not deleted, in
creation order. ``distem clean`` removes exactly those objects, newest first, so
it removes everything the agent made, even after a crash, and nothing else.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One journaled kernel object: its ``kind`` (link, netns, lxc, dir, cgroup, mount)."""

    kind: str
    id: str
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


class Journal:
    """Append-only record of created kernel objects. Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._live: dict[tuple[str, str], Entry] = {}
        self._load()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open() as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line after a crash
                key = (rec["kind"], rec["id"])
                if rec["op"] == "add":
                    self._live[key] = Entry(rec["kind"], rec["id"], rec.get("data", {}))
                else:
                    self._live.pop(key, None)

    def _append(self, records: list[dict[str, Any]]) -> None:
        payload = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        os.write(self._fd, payload.encode())
        os.fsync(self._fd)

    def add(self, kind: str, ident: str, **data: Any) -> Entry:
        """Record that ``kind``/``ident`` is about to be created. Idempotent."""
        return self.add_many([(kind, ident, data)])[0]

    def add_many(self, items: list[tuple[str, str, dict[str, Any]]]) -> list[Entry]:
        """Record several objects with one write and one fsync (for batches)."""
        with self._lock:
            entries = [Entry(k, i, d) for k, i, d in items]
            new = [e for e in entries if (e.kind, e.id) not in self._live]
            if new:
                self._append(
                    [{"op": "add", "kind": e.kind, "id": e.id, "data": e.data} for e in new]
                )
                for e in new:
                    self._live[(e.kind, e.id)] = e
            return entries

    def remove(self, kind: str, ident: str) -> None:
        """Record that ``kind``/``ident`` is gone. Idempotent."""
        self.remove_many([(kind, ident)])

    def remove_many(self, items: list[tuple[str, str]]) -> None:
        with self._lock:
            gone = [k for k in items if k in self._live]
            if gone:
                self._append([{"op": "del", "kind": k, "id": i} for k, i in gone])
                for key in gone:
                    del self._live[key]

    def live(self, kind: str | None = None) -> list[Entry]:
        """Objects added and not removed, oldest first (optionally of one kind)."""
        with self._lock:
            return [e for e in self._live.values() if kind is None or e.kind == kind]

    def contains(self, kind: str, ident: str) -> bool:
        with self._lock:
            return (kind, ident) in self._live

    def compact(self) -> None:
        """Rewrite the file with only the live objects."""
        with self._lock:
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("w") as fh:
                for e in self._live.values():
                    fh.write(json.dumps({"op": "add", "kind": e.kind, "id": e.id, "data": e.data}))
                    fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def close(self) -> None:
        os.close(self._fd)
