"""The sans-I/O parts: paths, match and templates, the token authority's rules, the SQLite store."""

from __future__ import annotations

from pathlib import Path

from engine.spec import SpecSet
from engine.spec.model import Auth, Lockout
from engine.spec.paths import natural_keys, values
from engine.twin.store import Store
from engine.twin.template import Context, matches, render
from engine.twin.tokens import TokenAuthority

MSG = {"h": "H1", "s": {"items": [{"k": "a", "r": "1"}, {"k": "b", "r": "0"}]}}


def test_paths_and_natural_keys() -> None:
    assert values(MSG, "s.items[].k") == ["a", "b"]
    assert natural_keys(MSG, ["h", "s.items[].k"]) == ["H1|a", "H1|b"]
    assert natural_keys(MSG, ["h"]) == ["H1"]
    assert natural_keys(MSG, None) == []


def test_match_semantics() -> None:
    rec = {"id": "1", "subs": [{"c": "x", "r": "0"}, {"c": "y", "r": "1"}]}
    assert matches(rec, "7", {"q": ""}, {"id": "q"}), "an empty request value does not constrain"
    assert not matches(rec, "7", {"q": ""}, {"id": "q!"}), "unless required"
    assert matches(rec, "7", {"q": "7"}, {"$id": "q"})
    assert matches(rec, "7", {"l": ["y", "z"]}, {"subs[].c": "l!", "subs[].r": "=1"})
    assert not matches(rec, "7", {"l": ["x"]}, {"subs[].c": "l!", "subs[].r": "=1"}), "both on the same item"


def test_template_each_copy_interpolation_and_missing() -> None:
    store = Store()
    a, _ = store.upsert("c", "k1", {"n": "A", "subs": [{"v": 1}, {"v": 2}]})
    ctx = Context({"want": "A"}, {"recs": [a]})
    tpl = {"list": {"$each": "recs", "$copy": "$.", "url": "http://x/{$id}", "gone": "$.nope"},
           "flat": [{"$each": "recs.subs", "v": "$.v", "n": "$record.n"}, {"v": 0}],
           "lit": "$$5", "vals": {"$each": "recs.subs", "$value": "$.v"}}
    out = render(tpl, ctx)
    assert out["list"] == [{"n": "A", "subs": [{"v": 1}, {"v": 2}], "url": f"http://x/{a.id}"}]
    assert out["flat"] == [{"v": 1, "n": "A"}, {"v": 2, "n": "A"}, {"v": 0}]
    assert out["lit"] == "$5" and out["vals"] == [1, 2]


def test_token_authority_rules() -> None:
    now = [1_700_000_000.0]
    auth = Auth(kind="token", lifetime_s=100, daily_cap=2, lockout=Lockout(failures=3, minutes=1), credentials=["u", "s"])
    ta = TokenAuthority(auth, {"u": "U", "s": "S"}, clock=lambda: now[0])
    assert ta.check(None) == "missing" and ta.check("x") == "invalid"
    tok = ta.issue({"u": "U", "s": "S"})
    assert ta.check(tok) is None
    ta.advance(100)
    assert ta.check(tok) == "expired"
    assert [ta.issue({"u": "U", "s": "bad"}) for _ in range(3)] == ["bad_credentials", "bad_credentials", "locked"]
    assert ta.issue({"u": "U", "s": "S"}) == "locked"
    ta.advance(61)
    assert ta.issue({"u": "U", "s": "bad"}) == "bad_credentials", "the count starts again after the lock-out"
    assert ta.issue({"u": "U", "s": "S"}) not in ("locked", "cap")
    assert ta.issue({"u": "U", "s": "S"}) == "cap"
    ta.advance(86400)
    assert ta.issue({"u": "U", "s": "S"}) not in ("locked", "cap")


def test_sqlite_store_persists_records_ids_and_counters(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    s = Store(path)
    rec, created = s.upsert("c", "k", {"pdf": b"%PDF"})
    s.bump("deliveries", "i", "k")
    s.close()
    s2 = Store(path)
    again, created2 = s2.upsert("c", "k", {"pdf": b"%PDF-2"})
    assert created and not created2 and again.id == rec.id
    assert s2.find("c")[0].data == {"pdf": b"%PDF-2"} and s2.count("deliveries", "i", "k") == 1
    assert s2.new_id() != rec.id


def test_lint_finds_broken_twin_sections(specs: SpecSet) -> None:
    import dataclasses

    import msgspec

    from engine.spec.model import Twin
    from engine.twin.lint import lint_platform

    for pid in ("city_lab_mr", "xinjiang_mr", "pe_system", "wedoctor_supervision", "jilin_imaging"):
        assert lint_platform(specs.platforms[pid]) == [], pid
    ps = specs.platforms["jilin_imaging"]
    iface = ps.interfaces["queryFormerlyExam"]
    broken = Twin(action="query", collection="nowhere", empty="999", reply={"datas": {"$each": "recs", "x": "$bogus", "$frob": 1}})
    bad_iface = dataclasses.replace(iface, spec=msgspec.structs.replace(iface.spec, twin=broken))
    bad = dataclasses.replace(ps, interfaces={**ps.interfaces, "queryFormerlyExam": bad_iface})
    found = "\n".join(lint_platform(bad))
    for needle in ("collection `nowhere`", "empty code `999`", "$each `recs`", "`$bogus`", "`$frob`"):
        assert needle in found, needle
