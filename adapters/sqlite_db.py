"""The embedded `Database`: aiosqlite on one file, WAL, so a poller reads while a writer writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import aiosqlite

from adapters.sql import ViewError, delete_sql, keyset_select, params_for, upsert_sql


class SqliteDatabase:
    """`adapters.sql.Database` over aiosqlite. Open with `await SqliteDatabase.open(path)`."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    async def open(cls, path: str | Path, *, readonly: bool = False, busy_timeout_ms: int = 5000) -> SqliteDatabase:
        """`readonly` opens with `mode=ro` (a poller never writes a hospital's database)."""
        p = str(path)
        if readonly:
            conn = await aiosqlite.connect(f"file:{Path(p).resolve()}?mode=ro", uri=True, isolation_level=None)
        else:
            conn = await aiosqlite.connect(p, isolation_level=None)
            await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        conn.row_factory = sqlite3.Row
        return cls(conn, p)

    async def fetch_after(
        self, table: str, columns: Sequence[str] | None, cursor: Sequence[str], after: Sequence[Any] | None, limit: int
    ) -> list[dict[str, Any]]:
        sql, params = keyset_select(table, columns, cursor, after, limit, dialect=self.dialect)
        try:
            async with self._conn.execute(sql, params) as cur:
                return [dict(r) for r in await cur.fetchall()]
        except sqlite3.OperationalError as exc:
            raise ViewError(f"view {table}: {exc}") from None

    async def fetch_rows_after(
        self, table: str, columns: Sequence[str] | None, cursor: Sequence[str], after: Sequence[Any] | None, limit: int
    ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """`fetch_after` as the column names and one tuple per row: the poller's read, no dict per row."""
        sql, params = keyset_select(table, columns, cursor, after, limit, dialect=self.dialect)
        try:
            async with self._conn.execute(sql, params) as cur:
                cur.row_factory = None  # plain tuples (a row object is made as it is fetched, so every row is one)
                rows = await cur.fetchall()
                return tuple(d[0] for d in cur.description or ()), rows  # type: ignore[return-value]
        except sqlite3.OperationalError as exc:
            raise ViewError(f"view {table}: {exc}") from None

    async def upsert(self, table: str, rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> int:
        """All rows in one transaction; rows may name different column sets."""
        if not rows:
            return 0
        try:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                for cols, group in groupby(rows, key=lambda r: tuple(r)):
                    await self._conn.executemany(upsert_sql(table, cols, key), [params_for(r) for r in group])
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            raise ViewError(f"view {table}: {exc}") from None
        except sqlite3.OperationalError as exc:
            raise ViewError(f"view {table}: {exc}") from None
        return len(rows)

    async def delete(self, table: str, key: Sequence[str], keys: Sequence[Sequence[Any]]) -> int:
        sql = delete_sql(table, key)
        n = 0
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            for values in keys:
                cur = await self._conn.execute(sql, params_for(dict(zip(key, values, strict=True))))
                n += cur.rowcount
            await self._conn.execute("COMMIT")
        except BaseException:
            await self._conn.execute("ROLLBACK")
            raise
        return n

    async def execute_script(self, statements: Sequence[str]) -> None:
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            for s in statements:
                await self._conn.execute(s)
            await self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            await self._conn.execute("ROLLBACK")
            raise ViewError(f"{self.path}: {exc}") from None

    async def close(self) -> None:
        await self._conn.close()
