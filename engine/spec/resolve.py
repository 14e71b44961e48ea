"""Resolve spec Fields into Nodes: groups spliced, overrides and defaults applied, codes looked up.

Every dangling reference or inconsistent attribute becomes a Finding located at the field's
line; resolution goes on so `check` reports all of them at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from engine.errors import Finding
from engine.plugins.registry import current as current_registry
from engine.plugins.spec import BASE_KINDS, BoundType, bind_check, ref, settings_or_finding
from engine.spec.dates import FormatError, compile_format
from engine.spec.decode import SpecFile
from engine.spec.model import Body, CodeTable, Field, Group
from engine.spec.nodes import SCALARS, Node, date_default

_CARD = re.compile(r"^(\d+)\.\.(\d+|n)$")
_DEC = re.compile(r"^decimal\((\d+),(\d+)\)$")
_LEN = re.compile(r"^(\d+)\.\.(\d+)$")

GroupLookup = Callable[[str], tuple[Group, SpecFile] | None]
CodeLookup = Callable[[str], tuple[CodeTable, SpecFile] | None]


_EMPTY = Field()


def merge(base: Field, over: Field) -> Field:
    """`over`'s explicitly set attributes win over `base`'s."""
    changes = {f: getattr(over, f) for f in over.__struct_fields__ if getattr(over, f) != getattr(_EMPTY, f)}
    return msgspec.structs.replace(base, **changes)


class Resolver:
    def __init__(self, groups: GroupLookup, codes: CodeLookup, defaults: Field | None, extra: str, *, needs: Sequence[str] = ()) -> None:
        self.groups = groups
        self.codes = codes
        self.defaults = defaults
        self.extra = extra
        self.needs = needs
        """The platform's `plugins:`, named when one of their extensions is missing."""
        self.registry = current_registry()
        self.used: set[tuple[str, str]] = set()
        """(kind, name) of every extension the resolved fields name (installed or not)."""
        self.findings: list[Finding] = []
        self._stack: list[str] = []

    def _err(self, sf: SpecFile, path: tuple[Any, ...], msg: str) -> None:
        self.findings.append(sf.finding(path, msg))

    def body(self, body: Body, sf: SpecFile, path: tuple[Any, ...]) -> Node:
        """A body is an object node (or a list node whose items are the fields)."""
        fields: dict[str, Field] = {}
        origins: dict[str, tuple[SpecFile, tuple[Any, ...]]] = {}
        for gid in body.use or []:
            got = self.groups(gid)
            if got is None:
                self._err(sf, (*path, "use"), f"unknown group `{gid}` in use")
                continue
            fields.update(got[0].fields)
            origins.update({k: (got[1], ("fields", k)) for k in got[0].fields})
        fields.update(body.fields)
        spec = Field(type="object", fields=fields, one_of=body.one_of, root=body.root)
        extra = body.extra or self.extra
        obj = self._object(spec, "$", fields, sf, (*path, "fields"), extra, origins)
        obj.one_of = body.one_of
        obj.root = body.root
        if body.type == "list":
            card = body.card or "0..n"
            lo, hi = self._card(card, sf, (*path, "card"))
            return Node(
                name="$",
                kind="list",
                spec=Field(type="list", card=card),
                min_items=lo,
                max_items=hi,
                children=obj.children,
                one_of=obj.one_of,
                extra=extra,
                required=lo > 0,
                nullable=False,
            )
        obj.required = True
        obj.nullable = False
        return obj

    def group_node(self, group: Group, sf: SpecFile) -> Node:
        obj = self._object(Field(type="object", fields=group.fields), group.id or "$", group.fields, sf, ("fields",), self.extra)
        obj.one_of = group.one_of
        obj.required = True
        obj.nullable = False
        return obj

    def _object(
        self,
        spec: Field,
        name: str,
        fields: dict[str, Field],
        sf: SpecFile,
        path: tuple[Any, ...],
        extra: str,
        origins: dict[str, tuple[SpecFile, tuple[Any, ...]]] | None = None,
    ) -> Node:
        """`origins` says which file (and path) a child really came from, so findings point there."""
        node = Node(name=name, kind="object", spec=spec, extra=extra)
        node.children = {}
        for k, f in fields.items():
            csf, cpath = (origins or {}).get(k, (sf, (*path, k)))
            node.children[k] = self.field(k, f, csf, cpath, extra)
        for group in spec.one_of or []:
            for n in group:
                if n not in node.children:
                    self._err(sf, (*path[:-1], "one_of"), f"one_of names `{n}`, which is not a field here")
        for child_name, child in node.children.items():
            for cond in (child.required_if, child.forbidden_if):
                if cond is not None and not cond.field.startswith("$") and cond.field not in node.children:
                    self._err(sf, (*path, child_name), f"condition on `{child_name}` refers to `{cond.field}`, not a sibling field")
        return node

    def _card(self, card: str, sf: SpecFile, path: tuple[Any, ...]) -> tuple[int, int | None]:
        m = _CARD.match(card)
        if not m:
            self._err(sf, path, f"bad cardinality {card!r}")
            return 0, None
        lo, hi = int(m.group(1)), None if m.group(2) == "n" else int(m.group(2))
        if hi is not None and hi < lo:
            self._err(sf, path, f"cardinality {card!r}: max below min")
        return lo, hi

    def field(self, name: str, f: Field, sf: SpecFile, path: tuple[Any, ...], extra: str) -> Node:
        if f.use:
            got = self.groups(f.use)
            if got is None:
                self._err(sf, (*path, "use"), f"unknown group `{f.use}` for field `{name}`")
            elif f.use in self._stack:
                self._err(sf, (*path, "use"), f"group `{f.use}` uses itself")
            else:
                fields = dict(got[0].fields)
                origins = {k: (got[1], ("fields", k)) for k in fields}
                for k, ov in (f.override or {}).items():
                    if k not in fields:
                        self._err(sf, (*path, "override", k), f"override names `{k}`, which group `{f.use}` lacks")
                    else:
                        fields[k] = merge(fields[k], ov)
                        origins[k] = (sf, (*path, "override", k))
                for k, v in (f.fields or {}).items():
                    fields[k] = v
                    origins[k] = (sf, (*path, "fields", k))
                f = msgspec.structs.replace(f, fields=fields, one_of=f.one_of or got[0].one_of)
                self._stack.append(got[0].id or f.use)
                try:
                    return self._field(name, f, sf, path, extra, origins)
                finally:
                    self._stack.pop()
        elif f.override:
            self._err(sf, (*path, "override"), "override without use")
        return self._field(name, f, sf, path, extra)

    def _field(
        self,
        name: str,
        f: Field,
        sf: SpecFile,
        path: tuple[Any, ...],
        extra: str,
        origins: dict[str, tuple[SpecFile, tuple[Any, ...]]] | None = None,
    ) -> Node:
        if self.defaults is not None:
            f = merge(self.defaults, f)
        kind = f.type
        if kind is None:
            if f.fields is not None or f.use:
                kind = "object"
            elif f.items is not None:
                kind = "list"
            else:
                self._err(sf, path, f"field `{name}` has no type")
                kind = "any"
        precision = scale = None
        dm = _DEC.match(kind)
        if dm:
            kind, precision, scale = "decimal", int(dm.group(1)), int(dm.group(2))
            if scale > precision:
                self._err(sf, (*path, "type"), f"{f.type}: scale above precision")
        custom = None
        ext = self.registry.get("field_type", kind)
        if ext is None:
            self.used.add(("field_type", kind))
            self._err(sf, (*path, "type"), self.registry.missing("field_type", kind, self.needs))
            kind = "any"
        elif not ext.builtin:
            self.used.add(("field_type", kind))
            settings, finding = settings_or_finding(ext, f.settings, sf, (*path, "settings"))
            if finding is not None:
                self.findings.append(finding)
            else:
                custom = BoundType(ext, settings)
            kind = BASE_KINDS[ext.impl.base]
        elif f.settings is not None:
            self._err(sf, (*path, "settings"), f"`settings` is for plugin field types; `{kind}` takes none")
        node = Node(name=name, kind=kind, spec=f, precision=precision, scale=scale, custom=custom)
        node.sensitive = bool(custom is not None and custom.ext.sensitive)
        is_list = kind == "list"
        if f.card and f.required is not None:
            self._err(sf, (*path, "required"), f"`{name}`: give card or required, not both")
        card = f.card or (("1..n" if is_list else "1..1") if f.required else ("0..n" if is_list else "0..1"))
        lo, hi = self._card(card, sf, (*path, "card"))
        if is_list:
            node.min_items, node.max_items, node.required = lo, hi, lo > 0
        else:
            if hi not in (1,):
                self._err(sf, (*path, "card"), f"`{name}` is a {kind}, so its card must be 0..1 or 1..1 (make it a list for {card})")
            node.required = lo > 0
        node.nullable = f.nullable if f.nullable is not None else not node.required
        node.allow_empty = bool(f.allow_empty)
        node.warn = f.severity == "warn"
        node.required_if, node.forbidden_if = f.required_if, f.forbidden_if
        node.aliases = tuple(f.aliases or ())
        node.encrypted = bool(f.encrypted)
        node.xml_attribute, node.xml_item = bool(f.xml_attribute), f.xml_item
        node.carried_as, node.root = f.carried_as, f.root
        node.vmin, node.vmax = f.min, f.max
        node.max_bytes, node.media_types = f.max_bytes, tuple(f.media_types or ())
        node.one_of = f.one_of
        if f.carried_as and kind not in ("object", "list"):
            self._err(sf, (*path, "carried_as"), f"carried_as needs an object or list, `{name}` is {kind}")
        if f.carried_as == "xml" and not f.root and kind == "object":
            self._err(sf, (*path, "root"), f"`{name}` is carried as XML but names no root element")
        # length
        if f.length is not None:
            if kind not in ("string", "binary", "any") and kind not in ("date", "datetime", "time", "number", "int", "decimal"):
                self._err(sf, (*path, "length"), f"length on a {kind} field")
            if isinstance(f.length, int):
                node.max_len = f.length
            else:
                lm = _LEN.match(f.length.strip())
                if lm:
                    node.min_len, node.max_len = int(lm.group(1)), int(lm.group(2))
                elif f.length.strip().isdigit():
                    node.max_len = int(f.length)
                else:
                    self._err(sf, (*path, "length"), f"bad length {f.length!r} (use 50 or '4..20')")
        node.unit = f.length_unit or "chars"
        node.encoding = f.encoding or "utf-8"
        if node.unit == "bytes":
            try:
                "a".encode(node.encoding)
            except LookupError:
                self._err(sf, (*path, "encoding"), f"unknown encoding {node.encoding!r}")
                node.encoding = "utf-8"
        # formats
        if kind in ("date", "datetime", "time"):
            try:
                node.date = compile_format(f.format or date_default(kind))
            except FormatError as exc:
                self._err(sf, (*path, "format"), str(exc))
        elif kind == "binary":
            if f.format not in (None, "base64", "hex"):
                self._err(sf, (*path, "format"), f"binary format must be base64 or hex, not {f.format!r}")
            node.binary_format = f.format or "base64"
        elif f.format is not None and kind not in ("string",):
            self._err(sf, (*path, "format"), f"format on a {kind} field")
        if f.pattern is not None:
            try:
                node.pattern = re.compile(f.pattern)
            except re.error as exc:
                self._err(sf, (*path, "pattern"), f"bad regex {f.pattern!r}: {exc}")
        if f.codes is not None:
            got = self.codes(f.codes)
            if got is None:
                self._err(sf, (*path, "codes"), f"unknown code table `{f.codes}`")
            else:
                node.codes = {k: (v if isinstance(v, str) else v.label) for k, v in got[0].values.items()}
                node.codes_id = f.codes
        node.codes_strict = f.codes_strict is not False
        for i, item in enumerate(f.checks or []):
            got = ref(item)
            if got is None:
                self._err(sf, (*path, "checks", i), "a check is a name or a one-key mapping {name: {settings}}")
                continue
            cname, raw = got
            cext = self.registry.get("check", cname)
            self.used.add(("check", cname))
            if cext is None:
                self._err(sf, (*path, "checks", i), self.registry.missing("check", cname, self.needs))
                continue
            where = (*path, "checks", i, cname) if isinstance(item, dict) else (*path, "checks", i)
            settings, finding = settings_or_finding(cext, raw, sf, where)
            if finding is not None:
                self.findings.append(finding)
                continue
            node.checks.append((cname, bind_check(cext, settings)))
            node.sensitive = node.sensitive or cext.sensitive
        # children
        if kind == "object":
            node.children = self._object(f, name, f.fields or {}, sf, (*path, "fields"), extra, origins).children
        elif is_list:
            if f.fields is not None:
                node.children = self._object(f, name, f.fields, sf, (*path, "fields"), extra, origins).children
            elif f.items is not None:
                node.item = self._field(name, f.items, sf, (*path, "items"), extra)
                node.item.required, node.item.nullable = True, bool(f.items.nullable)
            else:
                self._err(sf, path, f"list `{name}` needs `fields` (objects) or `items` (scalars)")
                node.item = Node(name=name, kind="any", spec=Field(type="any"))
        elif kind not in SCALARS:
            self._err(sf, (*path, "type"), f"unknown type {kind!r}")
        elif f.fields is not None:
            self._err(sf, (*path, "fields"), f"`{name}` is a {kind} and cannot have fields")
        node.extra = extra
        return node
