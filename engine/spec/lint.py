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


def lint_set(specset: Any) -> None:
    findings: list[Finding] = specset.findings
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
            if plat.missing:  # its examples cannot pass without the missing extensions, each already an error
                continue
            for idx, ex in enumerate(iface.spec.examples or []):
                findings.extend(run_example(iface, ex, sf, idx))
        for cid, (_, csf) in plat.codes.items():
            if cid not in used:
                findings.append(csf.finding(("id",), f"code table `{cid}` is not used by any field", "warn"))
