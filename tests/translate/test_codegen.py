"""Generated builders (engine/translate/codegen.py) translate exactly as the compiler's closures do.

Every sample mapping runs both ways (`load_mappings(generate=True)`, the default, and
`generate=False`, the reference) on its spec tests' inputs, its source's examples, the canonical
test data, and mutations of each of those records (a field deleted, null, empty, or of another
type): the same message, or the same error with the same field, record path and value."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.spec.loader import SpecSet
from engine.spec.sample import sample
from engine.spectest.load import discover, load_file
from engine.spectest.run import Runner, _patched
from engine.translate import MappingSet, Translator, load_mappings
from engine.translate import expr as expr_module

REPO = Path(__file__).resolve().parents[2]
DELETE = object()
VARIANTS: list[Any] = [DELETE, None, "", " x ", 12.5, True, [{}], {"C": "a", "V": "1", "code": "c", "name": "n"}, "20240230"]
"""What each field of a record is replaced with, one field at a time."""
MUTATED = 2
"""Records per mapping whose every field is mutated (the others run as they are)."""


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """`now()` gives one time, so both ways' messages compare equal."""
    fixed = dt.datetime(2024, 5, 11, 8, 0, 0)
    monkeypatch.setattr(expr_module, "_now_fmt", lambda fmt, f=expr_module._now_fmt: lambda _now: f(fmt)(fixed))


@pytest.fixture(scope="module")
def both(real_specs: SpecSet) -> tuple[MappingSet, MappingSet]:
    root = REPO / "specs" / "mappings"
    return load_mappings(root, real_specs, strict=False), load_mappings(root, real_specs, strict=False, generate=False)


def outcome(t: Translator, record: Any, request: Any) -> tuple[Any, ...]:
    """What a translator makes of a record: its message (and tree, when carried payloads are encoded), or its
    error and everything the error names."""
    try:
        message = t.translate(record, request=request)
        return "ok", message, t.build(record, request=request) if t._encode is not None else None
    except Exception as exc:  # whatever it is, the other way must raise the same
        return ("error", type(exc).__name__, str(exc), getattr(exc, "mapping", None), getattr(exc, "field", None),
                getattr(exc, "source", None), repr(getattr(exc, "value", None)))


def mutations(record: Any, fields: bool = True) -> Iterator[Any]:
    """The record, then copies with one field (top level, in the first row or one level down) replaced by each variant."""
    yield record
    for v in ([], {}, "text", None):
        yield v
    if not fields:
        return
    rows = record if isinstance(record, list) else [record]
    if not rows or not isinstance(rows[0], dict):
        return
    places: list[tuple[Any, ...]] = []
    for k, v in rows[0].items():
        places.append((k,))
        inner = v[0] if isinstance(v, list) and v and isinstance(v[0], dict) else v
        if isinstance(inner, dict):
            places += [(k, 0, k2) if inner is not v else (k, k2) for k2 in inner]
    for place in places:
        for variant in VARIANTS:
            copied = copy.deepcopy(record)
            parent = copied[0] if isinstance(copied, list) else copied
            for step in place[:-1]:
                parent = parent[step]
            if variant is DELETE:
                del parent[place[-1]]
            else:
                parent[place[-1]] = copy.deepcopy(variant)
            yield copied


def inputs(specset: SpecSet, gen: MappingSet) -> dict[str, list[tuple[Any, Any]]]:
    """(record, request) pairs per mapping: spec tests' inputs along their chains, source examples, canonical test data."""
    found: dict[str, list[tuple[Any, Any]]] = {t.id: [] for t in gen}
    runner = Runner(specset, gen)
    for path in discover([REPO / "specs"]):
        for lc in load_file(path)[0]:
            c = lc.case
            if lc.kind != "map":
                continue
            if c.example is not None:
                record = runner._example(lc, (c.from_ or "").strip().removeprefix("sources/").partition("#")[0], "from")[0].body
            elif c.input_file is not None:
                record = json.loads((lc.file.path.parent / c.input_file).read_text("utf-8"))
            else:
                record = c.input
            record = _patched(lc, record)
            request = None if c.request is None or not isinstance(c.request, (dict, list)) else c.request
            for t in runner._chain(lc, record).steps:
                found[t.id].append((record, request))
                try:
                    record = t.translate(record, request=request)
                except Exception:  # a test expecting an error: the chain stops here
                    break
    for t in gen:
        assert t.source.body is not None
        found[t.id] += [(sample(t.source.body.node, full=full), None) for full in (True, False)]
        if t.source.kind == "model":
            data = REPO / "tests" / "data" / "canonical" / f"{t.source.ref.removeprefix('canonical/')}.json"
            if data.is_file():
                found[t.id].append((json.loads(data.read_text("utf-8")), None))
            continue
        for ex in specset.interface(t.source.ref).spec.examples or []:
            if ex.part == t.source.part and isinstance(ex.body, (dict, list)):
                found[t.id].append((ex.body, None))
    return found


def test_every_sample_mapping_translates_alike_both_ways(real_specs: SpecSet, both: tuple[MappingSet, MappingSet]) -> None:
    gen, ref = both
    assert all(t.code for t in gen) and not any(t.code for t in ref)
    checked = errors = 0
    for mid, pairs in inputs(real_specs, gen).items():
        a, b = gen.get(mid), ref.get(mid)
        unique = {json.dumps(p, sort_keys=True, default=repr): p for p in pairs}
        for i, (record, request) in enumerate(unique.values()):
            for variant in mutations(record, fields=i < MUTATED):
                want, got = outcome(b, variant, request), outcome(a, variant, request)
                assert got == want, (mid, variant)
                checked += 1
                errors += got[0] == "error"
    assert checked > 5000 and errors > 200, (checked, errors)  # the comparison reached the error paths too


def test_value_constants_are_copied_per_record(mini) -> None:
    _, ms = mini({"m": "from: sources/lis/row\nto: canonical/report\nfields:\n  report_no: RNO\n  items: {value: [{code: c}]}\n"})
    t = ms.get("m")
    first = t.translate({"RNO": "1"})
    first["items"].append("changed")
    assert t.translate({"RNO": "2"})["items"] == [{"code": "c"}]


RULES = """
from: sources/lis/row
to: canonical/report
fields:
  report_no: [RNO, $.ST, "LINES[1].C", "LINES[0].PARTS[1].N"]
  first_code: "LINES[0].C"
  status: {from: ST, codes: d, type: string}
  report_time: {from: TIME, date: {in: [yyyyMMddHHmmss, yyyy-MM-dd], out: "yyyy-MM-dd HH:mm:ss"}}
  birth_date: {expr: "{{ id_card_birthday(record.IDNO) or reformat(record.BIRTH, 'yyyyMMdd', 'yyyy-MM-dd') }}"}
  price: {from: PRICE, number: {scale: 1, as: string}, default: "0"}
  note: {expr: "{{ record.NAME ~ '/' ~ (record.LINES | map(attribute='C') | join(',')) ~ record.MISSING }}"}
  flag: {from: OPT, type: bool, default: false}
  patient:
    fields:
      name: {from: NAME, codes: k}
      sex: {from: SEX, codes: o}
  patient.sex: {from: SEX, codes: e}
  items:
    each: [LINES, LINES]
    where: "{{ item.C != 'skip' and index < 5 }}"
    fields:
      code: {from: C, codes: e}
      value: {expr: "{{ outer }}"}
      seq: {expr: "{{ index * 10 + item.V | int }}", type: int}
      parts: {each: PARTS, fields: {name: N, owner: {from: $.SEX, codes: o}}}
  nothing: {from: [NAME], expr: "{{ 1 }}"}
  broken: {expr: "{{ record.NAME ( }}"}
  undefined: {expr: "{{ record.NOPE }}", codes: d}
  defaulted: {from: OPT, default: "-"}
  born: {expr: "{{ reformat(record.BIRTH, 'yyyyMMdd', 'yyyy-MM-dd') }}"}
"""
CODE_MAPS = {
    "d": "title: d\nmap: {x: 1, y: 2}\ndefault: 9\n",
    "k": "title: k\nmap: {王: W}\nunmapped: keep\n",
    "o": "title: o\nmap: {M: '1'}\nunmapped: omit\n",
    "e": "title: e\nmap: {a: A, b: B, 王: W, M: '1'}\n",
}
GOOD = {"RNO": "", "ST": "x", "TIME": "20240311092900", "BIRTH": "19670201", "PRICE": "12.345", "NAME": "王", "SEX": "M",
        "IDNO": "11010519670201001X", "OPT": "Y",
        "LINES": [{"C": "a", "V": "1", "PARTS": [{"N": "p1"}, {"N": "p2"}]}, {"C": "b", "V": "2", "PARTS": {"N": "one"}}]}


@pytest.mark.parametrize("absent", ["omit", "empty"])
def test_every_rule_kind_alike_both_ways(mini, tmp_path: Path, absent: str) -> None:
    """Code maps with a default, keep, omit and error; dates, numbers, casts, coalesced and root paths,
    template and closure expressions, each over several lists with where, nested objects whose
    parent is also written, rules that failed to compile; on a record and its mutations."""
    specset, gen = mini({"m": RULES.replace("fields:", f"absent: {absent}\nfields:", 1)}, CODE_MAPS)
    ref = load_mappings(tmp_path / "specs" / "mappings", specset, strict=False, generate=False)
    assert {f.message.split(":")[0] for f in gen.errors} >= {"expression syntax"}
    a, b = gen.get("m"), ref.get("m")
    assert "as a template" in a.code and "codes_e.get(" in a.code  # both kinds of expression, codes inline
    assert "once1 = NOT_YET  # reformat(" in a.code  # the call two rules make, remembered (lazily: see `born`)
    assert outcome(a, GOOD, None)[0] == "ok"
    n = 0
    for record in mutations(GOOD):
        assert outcome(a, record, None) == outcome(b, record, None), record
        n += 1
    assert n > 100


def test_generated_code_reads_like_the_mapping(both: tuple[MappingSet, MappingSet]) -> None:
    code = both[0].get("hospital_pacs.exam_report").code
    assert "def build_hospital_pacs_exam_report_fields(s):" in code
    assert "v = row.get('REPORT_ID', M)" in code and "out['report_no'] = v" in code
    assert "# {{ record.BIRTH_DATE or id_card_birthday(record.ID_CARD) }}" in code
    compile(code, "<generated>", "exec")  # one readable module: every builder of the mapping
