"""The twin's state: named collections of records, and delivery counters.

In memory by default (a twin restarted is a platform wiped, which is what tests want); with a
SQLite file every change is written through, so a twin can be restarted without forgetting what
was uploaded or how often (the crash test kills the bridge, not the twin, but a long demo may want
both). Records are msgpack blobs so attachments (PDF bytes) survive the round trip.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (collection TEXT, key TEXT, id TEXT, seq INTEGER, data BLOB, PRIMARY KEY (collection, key));
CREATE TABLE IF NOT EXISTS counters (kind TEXT, iface TEXT, sub TEXT, n INTEGER, PRIMARY KEY (kind, iface, sub));
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
"""


@dataclass(slots=True)
class Record:
    id: str
    key: str
    data: dict[str, Any]
    seq: int = 0


class Store:
    """Collections of records keyed by identity, ids generated once per identity, counters."""

    def __init__(self, path: str | Path | None = None, *, id_base: int = 10**16) -> None:
        self.collections: dict[str, dict[str, Record]] = {}
        self.counters: dict[str, dict[str, dict[str, int]]] = {}
        self.id_base = id_base
        self.seq = 0
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._load()

    def _load(self) -> None:
        assert self._db is not None
        for coll, key, rid, seq, blob in self._db.execute("SELECT collection, key, id, seq, data FROM records ORDER BY seq"):
            self.collections.setdefault(coll, {})[key] = Record(rid, key, msgspec.msgpack.decode(blob), seq)
        for kind, iface, sub, n in self._db.execute("SELECT kind, iface, sub, n FROM counters"):
            self.counters.setdefault(kind, {}).setdefault(iface, {})[sub] = n
        row = self._db.execute("SELECT value FROM meta WHERE name = 'seq'").fetchone()
        self.seq = int(row[0]) if row else 0

    def _next(self) -> int:
        self.seq += 1
        if self._db is not None:
            self._db.execute("INSERT INTO meta VALUES ('seq', ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value", (str(self.seq),))
        return self.seq

    def new_id(self) -> str:
        """A platform-style numeric id (jilin's examId looks like 14545458215112121): unique per twin."""
        return str(self.id_base + self._next())

    # -- records -------------------------------------------------------------------------
    def upsert(self, collection: str, key: str | None, data: dict[str, Any]) -> tuple[Record, bool]:
        """Insert, or replace the record with the same key (keeping its id). Returns (record, created)."""
        coll = self.collections.setdefault(collection, {})
        old = coll.get(key) if key is not None else None
        rid = old.id if old is not None else self.new_id()
        rec = Record(rid, key if key is not None else rid, data, self._next())
        coll[rec.key] = rec
        if self._db is not None:
            self._db.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?) ON CONFLICT(collection, key) DO UPDATE SET id = excluded.id,"
                " seq = excluded.seq, data = excluded.data",
                (collection, rec.key, rid, rec.seq, msgspec.msgpack.encode(data)),
            )
        return rec, old is None

    def find(self, collection: str, pred: Callable[[Record], bool] | None = None) -> list[Record]:
        return [r for r in self.collections.get(collection, {}).values() if pred is None or pred(r)]

    def delete(self, collection: str, records: list[Record]) -> int:
        coll = self.collections.get(collection, {})
        n = 0
        for r in records:
            if coll.pop(r.key, None) is not None:
                n += 1
                if self._db is not None:
                    self._db.execute("DELETE FROM records WHERE collection = ? AND key = ?", (collection, r.key))
        return n

    def all_records(self) -> Iterator[tuple[str, Record]]:
        for name, coll in self.collections.items():
            for r in coll.values():
                yield name, r

    # -- counters ------------------------------------------------------------------------
    def bump(self, kind: str, iface: str, sub: str = "", n: int = 1) -> int:
        per = self.counters.setdefault(kind, {}).setdefault(iface, {})
        per[sub] = value = per.get(sub, 0) + n
        if self._db is not None:
            self._db.execute(
                "INSERT INTO counters VALUES (?, ?, ?, ?) ON CONFLICT(kind, iface, sub) DO UPDATE SET n = excluded.n",
                (kind, iface, sub, value),
            )
        return value

    def count(self, kind: str, iface: str, sub: str = "") -> int:
        return self.counters.get(kind, {}).get(iface, {}).get(sub, 0)

    def reset(self) -> None:
        self.collections.clear()
        self.counters.clear()
        self.seq = 0
        if self._db is not None:
            self._db.executescript("DELETE FROM records; DELETE FROM counters; DELETE FROM meta;")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
