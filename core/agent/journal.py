"""The agent's journal: every kernel object it creates, on disk, before it exists.

One JSON object a line, appended: ``{"op": "add", "kind": "link", "id": "pdv1a2b",
...}`` (fsynced; threads share fsyncs) when an object is about to be created,
``{"op": "del", ...}`` once it is gone. ``live()`` replays the file: what was added
and not deleted, in creation order. ``distem clean`` removes exactly those objects, newest first, so
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
        # group commit: records are written under _lock, then one fsync under _sync
        # covers every record written before it, so threads adding at the same time
        # share fsyncs instead of queueing for one each
        self._sync = threading.Lock()
        self._written = 0  # records written so far
        self._synced = 0  # records known to be on disk
        self._live: dict[tuple[str, str], Entry] = {}
        self._seq: dict[tuple[str, str], int] = {}  # record number of each live entry
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

    def _append(self, records: list[dict[str, Any]]) -> int:
        """Write records (caller holds _lock); return their sequence number for _flush."""
        payload = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        os.write(self._fd, payload.encode())
        self._written += 1
        return self._written

    def _flush(self, seq: int) -> None:
        """Return once the records numbered up to ``seq`` are on disk (fsync), sharing
        one fsync with every thread whose records were written meanwhile."""
        with self._sync:
            if self._synced >= seq:
                return
            with self._lock:
                target, fd = self._written, self._fd
            os.fsync(fd)
            self._synced = max(self._synced, target)

    def add(self, kind: str, ident: str, **data: Any) -> Entry:
        """Record that ``kind``/``ident`` is about to be created. Idempotent."""
        return self.add_many([(kind, ident, data)])[0]

    def add_many(self, items: list[tuple[str, str, dict[str, Any]]]) -> list[Entry]:
        """Record several objects with one write and one fsync (for batches)."""
        with self._lock:
            entries = [Entry(k, i, d) for k, i, d in items]
            new = [e for e in entries if (e.kind, e.id) not in self._live]
            # an entry another thread just wrote is waited for too: on disk before use
            seq = max((self._seq.get((e.kind, e.id), 0) for e in entries), default=0)
            if new:
                seq = self._append(
                    [{"op": "add", "kind": e.kind, "id": e.id, "data": e.data} for e in new]
                )
                for e in new:
                    self._live[(e.kind, e.id)] = e
                    self._seq[(e.kind, e.id)] = seq
        if seq > self._synced:
            self._flush(seq)
        return entries

    def remove(self, kind: str, ident: str) -> None:
        """Record that ``kind``/``ident`` is gone. Idempotent."""
        self.remove_many([(kind, ident)])

    def remove_many(self, items: list[tuple[str, str]]) -> None:
        """Record objects as gone. Not fsynced on its own (the next add's fsync covers
        it): a "del" lost in a crash only makes ``clean`` retry an idempotent removal."""
        with self._lock:
            gone = [k for k in items if k in self._live]
            if gone:
                self._append([{"op": "del", "kind": k, "id": i} for k, i in gone])
                for key in gone:
                    del self._live[key]
                    self._seq.pop(key, None)

    def live(self, kind: str | None = None) -> list[Entry]:
        """Objects added and not removed, oldest first (optionally of one kind)."""
        with self._lock:
            return [e for e in self._live.values() if kind is None or e.kind == kind]

    def contains(self, kind: str, ident: str) -> bool:
        with self._lock:
            return (kind, ident) in self._live

    def compact(self) -> None:
        """Rewrite the file with only the live objects."""
        with self._sync, self._lock:
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
            self._synced = self._written

    def close(self) -> None:
        os.close(self._fd)
