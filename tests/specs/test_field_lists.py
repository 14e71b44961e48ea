"""Every platform's spec fields against the document's field list kept under tests/fields/.

The lists are written from the documents, independently of the specs, so a field silently
dropped (or invented) later fails here. Code-table sizes are counted against the documents too.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from engine.spec import load_specs
from engine.spec.nodes import Node

FIELDS = Path(__file__).parents[1] / "fields"
SPECS = Path(__file__).parents[2] / "specs"
PLATFORMS = sorted(
    p.stem for p in FIELDS.glob("*.tsv") if not p.name.endswith(".codes.tsv") and p.stem != "canonical_coverage"
)


def _paths(node: Node | None, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if node is None:
        return out
    for name, child in (node.children or {}).items():
        path = f"{prefix}{name}"
        out.add(path)
        if child.children is not None:
            out |= _paths(child, f"{path}[]." if child.is_list else f"{path}.")
    return out


@pytest.fixture(scope="module")
def specset():
    return load_specs(SPECS)


def _read_tsv(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(line.split("\t"))
    return rows


@pytest.mark.parametrize("platform", PLATFORMS)
def test_spec_fields_match_document_fields(specset, platform: str) -> None:
    expected: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in _read_tsv(FIELDS / f"{platform}.tsv"):
        assert len(row) >= 3, f"{platform}.tsv: bad row {row}"
        expected[(row[0], row[1])].add(row[2])
    ps = specset.platforms[platform]
    for (iid, part), want in sorted(expected.items()):
        assert iid in ps.interfaces, f"{platform}: document interface {iid} has no spec"
        iface = ps.interfaces[iid]
        body = {"request": iface.request, "response": iface.response, "headers": iface.headers}.get(part)
        if part == "response_headers":
            body = iface.response_headers
        have = _paths(body.node if body else None)
        assert want - have == set(), f"{platform}/{iid} {part}: fields of the document missing from the spec"
        assert have - want == set(), f"{platform}/{iid} {part}: spec fields the document does not have"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_code_tables_carry_every_document_value(specset, platform: str) -> None:
    path = FIELDS / f"{platform}.codes.tsv"
    if not path.exists():
        pytest.fail(f"{path.name} missing: every platform lists its document's code-table sizes")
    ps = specset.platforms[platform]
    for row in _read_tsv(path):
        table, count = row[0], int(row[1])
        got = ps.codes.get(table) or specset.common_codes.get(table)
        assert got is not None, f"{platform}: code table {table} missing"
        assert len(got[0].values) == count, f"{platform}/{table}: {len(got[0].values)} values, the document has {count}"
