"""Cross-file lint and spec unit tests (examples), run after a specs tree is compiled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from engine.errors import Finding
from engine.spec.compiled import CompiledInterface
from engine.spec.decode import SpecFile
from engine.spec.model import Example
from engine.spec.nodes import Node


def _has_path(node: Node, path: str) -> bool:
    cur: Node | None = node
    for part in path.replace("[]", "").split("."):
        if cur is None or cur.children is None or part not in cur.children:
            return False
        cur = cur.children[part]
    return True


def _used_codes(node: Node | None, out: set[str]) -> None:
    if node is None:
        return
    if node.codes_id:
        out.add(node.codes_id)
    for child in (node.children or {}).values():
        _used_codes(child, out)
    _used_codes(node.item, out)


def example_message(ex: Example, sf: SpecFile) -> Any:
    if ex.file is not None:
        p = (sf.path.parent / ex.file) if not Path(ex.file).is_absolute() else Path(ex.file)
        if not p.exists():
            p = sf.path.parent.parent / "examples" / ex.file
        return p.read_bytes()
    body = ex.body
    return msgspec.json.encode(body) if isinstance(body, (dict, list)) else body


def run_example(iface: CompiledInterface, ex: Example, sf: SpecFile, idx: int) -> list[Finding]:
    where = ("examples", idx)
    try:
        msg = example_message(ex, sf)
    except OSError as exc:
        return [sf.finding((*where, "file"), f"example `{ex.name}`: cannot read {ex.file}: {exc.strerror}")]
    body = iface.request if ex.part == "request" else iface.response
    if body is None:
        return [sf.finding(where, f"example `{ex.name}` is a {ex.part} but the interface has no {ex.part} body")]
    if body.format in ("soap", "form", "multipart", "row") and isinstance(ex.body, dict):
        msg = ex.body
    validate = iface.validate_request if ex.part == "request" else iface.validate_response
    res = validate(msg, headers=ex.headers)
    if ex.valid and not res.valid:
        shown = "; ".join(f"{e.path}: {e.rule}: {e.message}" for e in res.errors[:3])
        more = f" (+{len(res.errors) - 3} more)" if len(res.errors) > 3 else ""
        return [sf.finding(where, f"example `{ex.name}` should be valid but: {shown}{more}")]
    if not ex.valid:
        if res.valid:
            return [sf.finding(where, f"example `{ex.name}` should be invalid but validates")]
        got = {(e.path, e.rule) for e in res.errors}
        missing = [e for e in ex.errors or [] if (e.get("path"), e.get("rule")) not in got]
        if missing:
            have = "; ".join(f"{p} {r}" for p, r in sorted(got)[:5])
            return [sf.finding(where, f"example `{ex.name}` lacks expected finding(s) {missing}; got: {have}")]
    return []


def _node_at(node: Node | None, path: str) -> Node | None:
    cur = node
    for part in path.replace("[]", "").split("."):
        if cur is None or cur.children is None or part not in cur.children:
            return None
        cur = cur.children[part]
    return cur


def lint_reconcile(plat: Any, iface: CompiledInterface, sf: SpecFile, mappings_dir: Path | None) -> list[Finding]:
    """`reconcile:` names a query interface of the same platform that has an answer, a list of records in
    it, answer fields and sent-request fields that exist, and a mapping from this interface to the query."""
    rc = iface.spec.reconcile
    if rc is None:
        return []
    out: list[Finding] = []
    at = ("reconcile",)
    query = plat.interfaces.get(rc.query)
    if query is None or rc.query == iface.spec.id:
        what = "itself" if query is not None else f"`{rc.query}`, which {plat.id} does not define"
        return [sf.finding((*at, "query"), f"reconcile: query names {what} (known: {', '.join(sorted(plat.interfaces))})")]
    if query.response is None:
        return [sf.finding((*at, "query"), f"reconcile: `{rc.query}` has no response to tell whether the delivery arrived")]
    record = query.response.node
    if rc.records is not None:
        record = _node_at(record, rc.records)
        if record is None or not record.is_list or record.children is None:
            return [sf.finding((*at, "records"), f"reconcile: records `{rc.records}` is not a list of objects in `{rc.query}`'s answer")]
    if not rc.match:
        out.append(sf.finding((*at, "match"), "reconcile: match needs at least one answer field = sent request field"))
    for answer, sent in rc.match.items():
        where = f"`{rc.records}[]`" if rc.records else "the answer"
        if not _has_path(record, answer):
            out.append(sf.finding((*at, "match", answer), f"reconcile: `{answer}` is not a field of {where} of `{rc.query}`"))
        if iface.request is None or not _has_path(iface.request.node, sent):
            out.append(sf.finding((*at, "match", answer), f"reconcile: `{sent}` is not a request field of `{iface.spec.id}`"))
    if mappings_dir is not None:
        out.extend(_lint_reconcile_mapping(plat.id, iface, rc.query, rc.mapping, sf, mappings_dir))
    return out


def _lint_reconcile_mapping(pid: str, iface: CompiledInterface, query: str, mapping: str, sf: SpecFile,
                            mappings_dir: Path) -> list[Finding]:
    """The mapping exists and goes from this interface's request to the query's (its own findings are the mapping loader's)."""
    from engine.spec.decode import decode_file
    from engine.translate.model import Mapping  # the mapping language's types: no translator is built here

    where = ("reconcile", "mapping")
    path = next((p for p in (mappings_dir / f"{mapping}.yaml", mappings_dir / f"{mapping}.yml") if p.is_file()), None)
    if path is None:
        return [sf.finding(where, f"reconcile: no mapping `{mapping}` in {mappings_dir}")]
    m, _, _ = decode_file(path, str(path), Mapping)
    want = (f"{pid}/{iface.spec.id}", f"{pid}/{query}")
    if m is not None and ((m.from_.strip(), m.to.strip()) != want or m.part != "request" or m.to_part != "request"):
        return [sf.finding(where, f"reconcile: mapping `{mapping}` must map {want[0]} to {want[1]} (requests), not {m.from_} to {m.to}")]
    return []


def lint_set(specset: Any) -> None:
    findings: list[Finding] = specset.findings
    mappings_dir = specset.root / "mappings" if (specset.root / "mappings").is_dir() else None
    for plat in specset.platforms.values():
        used: set[str] = set()
        auth = plat.platform.auth
        if auth and auth.interface and auth.interface not in plat.interfaces:
            findings.append(plat.file.finding(("auth", "interface"), f"auth names interface `{auth.interface}`, which is not defined"))
        for iid, iface in plat.interfaces.items():
            sf = plat.interface_files[iid]
            for body in (iface.request, iface.response, iface.headers, iface.response_headers):
                _used_codes(body.node if body else None, used)
            if iface.request is None and iface.response is None:
                findings.append(sf.finding(("id",), f"interface `{iid}` has neither request nor response", "warn"))
            for k in iface.spec.key or []:
                if iface.request is None or not _has_path(iface.request.node, k):
                    findings.append(sf.finding(("key",), f"key `{k}` is not a request field"))
            findings.extend(lint_reconcile(plat, iface, sf, mappings_dir))
            if plat.missing:  # its examples cannot pass without the missing extensions, each already an error
                continue
            for idx, ex in enumerate(iface.spec.examples or []):
                findings.extend(run_example(iface, ex, sf, idx))
        for cid, (_, csf) in plat.codes.items():
            if cid not in used:
                findings.append(csf.finding(("id",), f"code table `{cid}` is not used by any field", "warn"))
