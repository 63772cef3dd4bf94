"""The coordinator's persistent state: one SQLite file (standard library).

Objects are stored as JSON documents keyed by (kind, name): pnodes, vnetworks,
vnodes. A restarted coordinator reloads the platform it built from here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Store:
    """A thread-safe key/document store; ``batch()`` groups writes in one transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, name TEXT NOT NULL, "
            "seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, name))"
        )
        self._lock = threading.RLock()
        self._depth = 0
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM objects").fetchone()
        self._seq = int(row[0])

    @contextmanager
    def batch(self) -> Iterator[None]:
        """All writes inside are one transaction (rolled back on error)."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    def put(self, kind: str, name: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            self._db.execute(
                "INSERT INTO objects(kind, name, seq, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(kind, name) DO UPDATE SET data = excluded.data",
                (kind, name, self._seq, json.dumps(data)),
            )

    def put_many(self, kind: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        with self.batch():
            for name, data in items:
                self.put(kind, name, data)

    def delete(self, kind: str, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM objects WHERE kind = ? AND name = ?", (kind, name))

    def delete_kind(self, kind: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM objects WHERE kind = ?", (kind,))

    def all(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """(name, document) pairs of one kind, in creation order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, data FROM objects WHERE kind = ? ORDER BY seq", (kind,)
            ).fetchall()
        return [(n, json.loads(d)) for n, d in rows]

    def size_bytes(self) -> int:
        with self._lock:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(size)

    def close(self) -> None:
        with self._lock:
            self._db.close()
