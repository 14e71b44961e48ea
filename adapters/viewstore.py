"""The serving side of `dbview`: views a platform reads, kept by the engine in its own database.

xinjiang_mr's imaging cloud reads a hospital's PACS views (v_web_jcjg, v_web_jctj) over a database
connection. The engine plays the hospital: it creates, from the spec's `row` fields, a backing
table keyed by the view's key and a view of exactly the spec's columns, and the runtime upserts
rows as messages arrive. Each row is validated against the spec before it is written, so a reader
never sees a row the document forbids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.rows import format_java, to_column
from adapters.sql import Database, ViewError, table_ddl
from adapters.sqlite_db import SqliteDatabase
from engine.spec.compiled import CompiledInterface
from engine.spec.nodes import Node


@dataclass(slots=True)
class ServedView:
    interface: str
    name: str
    backing: str
    key: list[str]
    watermark: str | None
    fields: dict[str, Node]
    ci: CompiledInterface


def served_view(ci: CompiledInterface, name: str | None = None) -> ServedView:
    """What to create for one interface with `binding.view` and a `row` request body."""
    view = ci.spec.binding.view if ci.spec.binding else None
    if view is None:
        raise ViewError(f"{ci.qualified_id} has no binding.view")
    if ci.request is None or ci.request.format != "row" or not ci.request.node.children:
        raise ViewError(f"{ci.qualified_id}: a served view needs a request body of format row with fields")
    key = list(view.key or ci.spec.key or [])
    vname = name or view.name
    return ServedView(ci.qualified_id, vname, f"{vname}__rows", key, view.watermark, dict(ci.request.node.children), ci)


class ViewStore:
    """Upsert and delete rows of the served views; `open()` creates them from the specs."""

    def __init__(self, db: Database, views: Iterable[ServedView], *, validate: bool = True) -> None:
        self.db = db
        self.views = {v.interface: v for v in views}
        self.validate = validate

    @classmethod
    async def open(
        cls, path: str | Path, interfaces: Iterable[CompiledInterface], *, names: Mapping[str, str] | None = None, validate: bool = True
    ) -> ViewStore:
        """`names`: per-deployment view names by qualified interface id."""
        names = names or {}
        store = cls(await SqliteDatabase.open(path), [served_view(ci, names.get(ci.qualified_id)) for ci in interfaces], validate=validate)
        await store.ensure()
        return store

    async def ensure(self) -> None:
        stmts: list[str] = []
        for v in self.views.values():
            stmts += table_ddl(v.name, v.fields, v.key, v.backing)
        await self.db.execute_script(stmts)

    def _view(self, interface: str) -> ServedView:
        try:
            return self.views[interface]
        except KeyError:
            raise ViewError(f"no served view for {interface}; serving {sorted(self.views)}") from None

    def prepare(self, interface: str, row: Mapping[str, Any], *, now: dt.datetime | None = None) -> dict[str, Any]:
        """The row as stored: watermark stamped when absent, values in column form, validated."""
        v = self._view(interface)
        unknown = [k for k in row if k not in v.fields]
        if unknown:
            raise ViewError(f"view {v.name}: unknown column(s) {unknown}; the view has {list(v.fields)}")
        out = {k: to_column(val, v.fields[k]) for k, val in row.items()}
        wm = v.watermark
        if wm and out.get(wm) in (None, ""):
            node = v.fields[wm]
            stamp = now or dt.datetime.now()
            out[wm] = format_java(stamp, node.date.spec) if node.date is not None else stamp.isoformat(sep=" ", timespec="seconds")
        if self.validate:
            res = v.ci.validate_request(out)
            if not res.valid:
                found = "; ".join(f"{i.path}: {i.rule}: {i.message}" for i in res.errors)
                raise ViewError(f"view {v.name}: row refused: {found}")
        return out

    async def upsert(self, interface: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert or replace rows by the view's key, all in one transaction (all or none)."""
        v = self._view(interface)
        prepared = []
        for i, r in enumerate(rows):
            try:
                prepared.append(self.prepare(interface, r))
            except ViewError as exc:
                raise ViewError(f"row {i}: {exc}") from None
        return await self.db.upsert(v.backing, prepared, v.key)

    async def delete(self, interface: str, keys: Sequence[Sequence[Any]]) -> int:
        """Remove rows by key values (a voided exam disappears from the view)."""
        v = self._view(interface)
        return await self.db.delete(v.backing, v.key, keys)

    async def close(self) -> None:
        await self.db.close()
