"""SQL text for views, sans I/O: keyset reads, upserts and DDL built from a spec's row fields.

Why by hand and not an ORM: these are four statement shapes over names the spec gives, and the
same text (named `:p0` parameters, quoted identifiers) runs on sqlite3 and on SQLAlchemy's
`text()`, so a PostgreSQL, Oracle or SQL Server `Database` reuses it unchanged but for the
dialect's row limit and upsert. Every identifier is checked, then quoted: a spec or a deployment
setting can name a view, never inject into one.

`Database` is the seam the poller and the view store speak. `adapters.sqlite_db.SqliteDatabase` is
the embedded implementation. An SQLAlchemy one slots in like this (not shipped, so SQLAlchemy is
not a dependency)::

    class SqlAlchemyDatabase:
        def __init__(self, url: str) -> None:          # postgresql+asyncpg://, oracle+oracledb://,
            self.engine = create_async_engine(url)     # mssql+aioodbc://
            self.dialect = self.engine.dialect.name    # "postgresql" | "oracle" | "mssql"

        async def fetch_after(self, table, columns, cursor, after, limit):
            sql, params = keyset_select(table, columns, cursor, after, limit, dialect=self.dialect)
            async with self.engine.connect() as c:
                return [dict(r._mapping) for r in await c.execute(text(sql), params)]

        async def upsert(self, table, rows, key):      # PostgreSQL: upsert_sql() works as is;
            ...                                        # Oracle / SQL Server: a MERGE statement
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from engine.errors import SpecbridgeError
from engine.spec.nodes import Node

_IDENT = re.compile(r"^[^\W\d]\w*$", re.UNICODE)
DIALECTS = ("sqlite", "postgresql", "oracle", "mssql")

# spec field kind -> SQLite column type (affinity); dates are stored as the spec's text format
COLUMN_TYPES: dict[str, str] = {
    "string": "TEXT",
    "int": "INTEGER",
    "number": "NUMERIC",
    "decimal": "NUMERIC",
    "date": "TEXT",
    "datetime": "TEXT",
    "time": "TEXT",
    "bool": "INTEGER",
    "binary": "BLOB",
}


class ViewError(SpecbridgeError):
    """A view binding, a row or a database setting is wrong; the message names the view and field."""


class Database(Protocol):
    """What the poller and the view store need from a database; one class per driver."""

    dialect: str

    async def fetch_after(
        self, table: str, columns: Sequence[str] | None, cursor: Sequence[str], after: Sequence[Any] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Rows ordered by `cursor` strictly after the `after` values (all rows when None), at most `limit`."""
        ...

    async def upsert(self, table: str, rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> int: ...

    async def delete(self, table: str, key: Sequence[str], keys: Sequence[Sequence[Any]]) -> int: ...

    async def execute_script(self, statements: Sequence[str]) -> None:
        """Run DDL in one transaction."""
        ...

    async def close(self) -> None: ...


def quote(name: str) -> str:
    """`schema.view` -> `"schema"."view"`; anything but word characters is refused."""
    parts = name.split(".")
    for p in parts:
        if not _IDENT.match(p):
            raise ViewError(f"identifier {name!r}: {p!r} is not a plain name (letters, digits, underscore)")
    return ".".join(f'"{p}"' for p in parts)


def _limit(dialect: str, limit: int) -> str:
    if dialect not in DIALECTS:
        raise ViewError(f"unknown SQL dialect {dialect!r}; one of {DIALECTS}")
    if dialect == "oracle":
        return f" FETCH FIRST {int(limit)} ROWS ONLY"
    if dialect == "mssql":
        return f" OFFSET 0 ROWS FETCH NEXT {int(limit)} ROWS ONLY"
    return f" LIMIT {int(limit)}"


def keyset_predicate(cursor: Sequence[str], n_offset: int = 0) -> tuple[str, list[str]]:
    """`(a, b) > (:p0, :p1)` spelt out as `a > :p0 OR (a = :p0 AND b > :p1)`, which every dialect
    accepts (Oracle and SQL Server have no row-value comparison). Returns SQL and parameter names."""
    names = [f"p{n_offset + i}" for i in range(len(cursor))]
    cols = [quote(c) for c in cursor]
    ors = []
    for i in range(len(cols)):
        eqs = [f"{cols[j]} = :{names[j]}" for j in range(i)]
        ors.append("(" + " AND ".join([*eqs, f"{cols[i]} > :{names[i]}"]) + ")")
    return "(" + " OR ".join(ors) + ")", names


def keyset_select(
    table: str,
    columns: Sequence[str] | None,
    cursor: Sequence[str],
    after: Sequence[Any] | None,
    limit: int,
    *,
    dialect: str = "sqlite",
) -> tuple[str, dict[str, Any]]:
    """One page of a keyset read: rows ordered by the cursor columns, strictly after `after`."""
    if not cursor:
        raise ViewError(f"view {table}: no cursor columns (set binding.view.watermark and key)")
    cols = "*" if not columns else ", ".join(quote(c) for c in columns)
    sql = f"SELECT {cols} FROM {quote(table)}"
    params: dict[str, Any] = {}
    if after is not None:
        if len(after) != len(cursor):
            raise ViewError(f"view {table}: cursor has {len(after)} values for {len(cursor)} columns")
        pred, names = keyset_predicate(cursor)
        sql += f" WHERE {pred}"
        params = dict(zip(names, after, strict=True))
    sql += " ORDER BY " + ", ".join(quote(c) for c in cursor) + _limit(dialect, limit)
    return sql, params


def upsert_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """INSERT ... ON CONFLICT (key) DO UPDATE: SQLite >= 3.24 and PostgreSQL share this text."""
    missing = [k for k in key if k not in columns]
    if missing:
        raise ViewError(f"view {table}: row lacks key column(s) {missing}")
    cols = ", ".join(quote(c) for c in columns)
    vals = ", ".join(f":{_param(c)}" for c in columns)
    rest = [c for c in columns if c not in key]
    action = "DO UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in rest) if rest else "DO NOTHING"
    conflict = ", ".join(quote(k) for k in key)
    return f"INSERT INTO {quote(table)} ({cols}) VALUES ({vals}) ON CONFLICT ({conflict}) {action}"


def delete_sql(table: str, key: Sequence[str]) -> str:
    return f"DELETE FROM {quote(table)} WHERE " + " AND ".join(f"{quote(k)} = :{_param(k)}" for k in key)


def _param(column: str) -> str:
    """Parameter names must be ASCII-safe for every driver: columns are already checked names."""
    return "c_" + column.encode("utf-8").hex() if not column.isascii() else "c_" + column


def params_for(row: Mapping[str, Any]) -> dict[str, Any]:
    return {_param(k): v for k, v in row.items()}


def table_ddl(name: str, fields: Mapping[str, Node], key: Sequence[str], backing: str) -> list[str]:
    """A backing table typed from the row's fields plus the view the reader sees under `name`.

    The view hides the backing table so a reader gets exactly the spec's columns in the spec's order.
    """
    if not key:
        raise ViewError(f"view {name}: no key (binding.view.key or the interface's key) to upsert by")
    cols = []
    for fname, node in fields.items():
        tp = COLUMN_TYPES.get(node.kind)
        if tp is None:
            raise ViewError(f"view {name}: field {fname} is {node.kind}; a row holds scalars only")
        cols.append(f"{quote(fname)} {tp}" + (" NOT NULL" if node.required or fname in key else ""))
    unknown = [k for k in key if k not in fields]
    if unknown:
        raise ViewError(f"view {name}: key column(s) {unknown} are not fields of the row")
    cols.append("PRIMARY KEY (" + ", ".join(quote(k) for k in key) + ")")
    return [
        f"CREATE TABLE IF NOT EXISTS {quote(backing)} (" + ", ".join(cols) + ")",
        f"DROP VIEW IF EXISTS {quote(name)}",
        f"CREATE VIEW {quote(name)} AS SELECT " + ", ".join(quote(f) for f in fields) + f" FROM {quote(backing)}",
    ]
