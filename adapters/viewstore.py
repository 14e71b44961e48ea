"""The serving side of `dbview`: views a platform reads, kept by the engine in its own database.

xinjiang_mr's imaging cloud reads a hospital's PACS views (v_web_jcjg, v_web_jctj) over a database
connection. The engine plays the hospital: it creates, from the spec's `row` fields, a backing
table keyed by the view's key and a view of exactly the spec's columns, and the runtime upserts
rows as messages arrive. Each row is validated against the spec before it is written, so a reader
never sees a row the document forbids.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.rows import format_java, to_column
from adapters.sql import Database, ViewError, table_ddl
from adapters.sqlite_db import SqliteDatabase
from engine.spec.compiled import CompiledBody, CompiledInterface
from engine.spec.model import Body
from engine.spec.nodes import Node


@dataclass(slots=True)
class ServedView:
    interface: str
    name: str
    backing: str
    key: list[str]
    watermark: str | None
    fields: dict[str, Node]
    body: CompiledBody
    """Validates one row: the request body, or the row node when rows are a response's items."""


def _rows(ci: CompiledInterface, key: list[str]) -> tuple[dict[str, Node], CompiledBody]:
    """Where the view's columns are: the request's fields (a row a platform reads, xinjiang_mr), or
    the items of the response's list whose fields hold the key (pe_system `getApplyInfo`: the view
    is what the query returns)."""
    req = ci.request
    if req is not None and req.format in ("row", "json") and req.node.children and all(k in req.node.children for k in key):
        return dict(req.node.children), req
    resp = ci.response
    for child in (resp.node.children or {}).values() if resp is not None else ():
        if child.is_list and child.children and all(k in child.children for k in key):
            row = dataclasses.replace(child, kind="object", required=True, min_items=0, max_items=None)
            return dict(child.children), CompiledBody(Body(format="row"), row)
    raise ViewError(f"{ci.qualified_id}: key {key} names no request fields nor the fields of a response list")


def served_view(ci: CompiledInterface, name: str | None = None) -> ServedView:
    """What to create for one interface with `binding.view`: a table of its row fields, a view over it."""
    view = ci.spec.binding.view if ci.spec.binding else None
    if view is None:
        raise ViewError(f"{ci.qualified_id} has no binding.view")
    key = list(view.key or ci.spec.key or [])
    if not key:
        raise ViewError(f"{ci.qualified_id}: view {view.name} has no key (binding.view.key or the interface key)")
    fields, body = _rows(ci, key)
    vname = name or view.name
    return ServedView(ci.qualified_id, vname, f"{vname}__rows", key, view.watermark, fields, body)


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
            res = v.body.validate(out)
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
