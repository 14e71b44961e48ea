"""Each rule kind of the mapping language, on a small self-contained specs tree (conftest.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.translate import TranslateError, UnmappedCode

ROW = {
    "RNO": "R1",
    "ST": "x",
    "TIME": "20240311092900",
    "BIRTH": "19670201",
    "PRICE": "12.345",
    "NAME": "王",
    "SEX": "M",
    "IDNO": "11010519670201001X",
    "LINES": [
        {"C": "a", "V": "1", "PARTS": [{"N": "p1"}, {"N": "p2"}]},
        {"C": "b", "V": "", "PARTS": []},
        {"C": "zz", "V": "3"},
    ],
}

BASE = """
from: sources/lis/row
to: canonical/report
fields:
  report_no: RNO
  status: {from: ST, codes: st_map}
  report_time: {from: TIME, date: {}}
  patient.name: NAME
"""
ITEMS = "  items: {each: LINES, fields: {code: C}}\n"

CODES = {"st_map": "title: st\nmap: {x: '1', y: '2'}\n"}


def one(mini, extra: str = "", codes: dict[str, str] | None = None, base: str = BASE):
    if "  items:" not in extra:
        extra += ITEMS
    _, ms = mini({"m": base + extra}, {**CODES, **(codes or {})})
    assert not ms.errors, [str(f) for f in ms.errors]
    return ms.get("m")


def test_paths_codes_dates_nested_targets(mini) -> None:
    t = one(mini)
    out = t.translate(ROW)
    assert out == {
        "report_no": "R1",
        "status": "1",
        "report_time": "2024-03-11 09:29:00",
        "patient": {"name": "王"},
        "items": [{"code": "a"}, {"code": "b"}, {"code": "zz"}],
    }
    assert t.validate(out).valid


def test_unmapped_code_names_code_field_and_record_path(mini) -> None:
    t = one(mini, "  items: {each: LINES, fields: {code: {from: C, codes: line_map}}}\n",
            {"line_map": "title: lines\nmap: {a: A1, b: B1}\n"})
    with pytest.raises(UnmappedCode) as ei:
        t.translate(ROW)
    e = ei.value
    assert (e.code, e.code_map, e.field, e.source) == ("zz", "line_map", "items[2].code", "LINES[2].C")
    assert "'zz'" in str(e) and "line_map" in str(e) and "items[2].code" in str(e) and "LINES[2].C" in str(e)


def test_code_map_default_keep_omit(mini) -> None:
    codes = {
        "d": "title: d\nmap: {a: A}\ndefault: Z\n",
        "k": "title: k\nmap: {a: A}\nunmapped: keep\n",
        "o": "title: o\nmap: {a: A}\nunmapped: omit\n",
    }
    extra = (
        "  items: {each: LINES, fields: {code: {from: C, codes: d}, value: {from: C, codes: k},"
        " parts: {each: ., fields: {name: {from: C, codes: o}}}}}\n"
    )
    out = one(mini, extra, codes).translate(ROW)
    assert [i["code"] for i in out["items"]] == ["A", "Z", "Z"]
    assert [i["value"] for i in out["items"]] == ["A", "b", "zz"]
    assert [i["parts"] for i in out["items"]] == [[{"name": "A"}], [{}], [{}]]


def test_date_formats_explicit_list_and_errors(mini) -> None:
    extra = "  birth_date: {from: BIRTH, date: {in: [yyyy-MM-dd, yyyyMMdd], out: yyyy-MM-dd}}\n"
    t = one(mini, extra)
    assert t.translate(ROW)["birth_date"] == "1967-02-01"
    assert t.translate({**ROW, "BIRTH": "1967-02-01"})["birth_date"] == "1967-02-01"
    with pytest.raises(TranslateError) as ei:
        t.translate({**ROW, "BIRTH": "19670230"})
    assert ei.value.field == "birth_date" and ei.value.source == "BIRTH" and "19670230" in str(ei.value)
    # datetime objects from a database driver are formatted directly
    assert t.translate({**ROW, "TIME": dt.datetime(2024, 1, 2, 3, 4, 5)})["report_time"] == "2024-01-02 03:04:05"


def test_number_value_default_type(mini) -> None:
    extra = (
        "  price: {from: PRICE, number: {scale: 2}}\n"
        "  note: {from: PRICE, number: {scale: 1, as: string}}\n"
        "  flag: {value: true}\n"
        "  patient.sex: {from: OPT, default: '9'}\n"
        "  items: {each: LINES, fields: {code: C, value: {from: V, default: none}, seq: {from: V, type: int}}}\n"
    )
    out = one(mini, extra).translate(ROW)
    assert out["price"] == 12.35 and out["note"] == "12.3" and out["flag"] is True
    assert out["patient"]["sex"] == "9"
    assert out["items"][0] == {"code": "a", "value": "1", "seq": 1}
    assert out["items"][1] == {"code": "b", "value": "none"}  # "" counts as absent: the default applies


def test_nested_each_where_root_paths_and_single_object(mini) -> None:
    extra = """  items:
    each: LINES
    where: "{{ item.V }}"
    fields:
      code: C
      parts:
        each: PARTS
        fields:
          name: N
          owner: $.RNO
"""
    out = one(mini, extra).translate(ROW)
    assert out["items"] == [
        {"code": "a", "parts": [{"name": "p1", "owner": "R1"}, {"name": "p2", "owner": "R1"}]},
        {"code": "zz"},
    ]
    # each over one object maps it as a one-item list
    single = one(mini, "  items: {each: ., fields: {code: RNO}}\n").translate(ROW)
    assert single["items"] == [{"code": "R1"}]


def test_fields_object_and_coalesce(mini) -> None:
    extra = "  patient: {fields: {name: [OPT, NAME], sex: {from: SEX, codes: sx}}}\n"
    out = one(mini, extra, {"sx": "title: s\nmap: {M: '1'}\n"}).translate(ROW)
    assert out["patient"] == {"name": "王", "sex": "1"}


def test_expressions_native_template_and_helpers(mini) -> None:
    extra = (
        "  birth_date: {expr: \"{{ id_card_birthday(record.IDNO) }}\"}\n"
        "  note: {expr: \"{{ record.NAME }}-{{ record.LINES | length }}-{{ code_label('status', '2') }}\"}\n"
        "  price: {expr: \"{{ age(record.BIRTH, '2024-03-11') }}\"}\n"
        "  flag: {expr: \"{{ map_code('st_map', record.ST) == '1' }}\"}\n"
        "  items: {each: LINES, fields: {code: {expr: \"{{ index }}:{{ item.C }}\"}, value: {expr: \"{{ now('yyyy') }}\"}}}\n"
    )
    out = one(mini, extra).translate(ROW)
    assert out["birth_date"] == "1967-02-01"
    assert out["note"] == "王-3-two"
    assert out["price"] == 57 and out["flag"] is True
    assert out["items"][2]["code"] == "2:zz"
    assert out["items"][0]["value"] == str(dt.date.today().year)


@pytest.mark.parametrize(
    "expr",
    [
        "{{ record.__class__ }}",
        "{{ record.__class__.__mro__ }}",
        "x{{ ''.__class__.__subclasses__() }}",
        "{{ record.LINES.append(1) }}",
    ],
)
def test_sandbox_refuses_dunders_and_mutation(mini, expr: str) -> None:
    t = one(mini, f"  note: {{expr: \"{expr}\"}}\n")
    with pytest.raises(TranslateError) as ei:
        t.translate(ROW)
    assert "note" in str(ei.value)
    assert "unsafe" in str(ei.value) or "SecurityError" in str(ei.value)


def test_missing_values_are_omitted_or_empty(mini) -> None:
    out = one(mini, "  note: OPT\n").translate(ROW)
    assert "note" not in out
    _, ms = mini({"m": BASE.replace("fields:", "absent: empty\nfields:", 1) + ITEMS + "  note: OPT\n"}, CODES)
    assert ms.get("m").translate(ROW)["note"] == ""


def test_carried_xml_spec_defaults_and_supplied_fields(mini) -> None:
    m = """
from: canonical/report
to: plat/up
fields:
  payload.rec:
    each: items
    fields:
      no: code
      st: {value: A}
"""
    _, ms = mini({"up": m})
    assert not ms.errors, [str(f) for f in ms.errors]
    t = ms.get("up")
    assert t.supplied == ("cred",)
    out = t.translate({"items": [{"code": "c1"}, {"code": "c2"}]})
    assert out["mode"] == "A"  # a required field with a spec default is filled
    assert out["payload"] == '<root><rec><item no="c1" st="A"/><item no="c2" st="A"/></rec></root>'
    assert t.build({"items": [{"code": "c1"}]})["payload"] == {"rec": [{"no": "c1", "st": "A"}]}
    res = t.validate(out)
    assert res.valid, res.to_dict()
    assert not t.validate(out, fill_supplied=False).valid


def test_translation_is_compiled_once(mini) -> None:
    """No YAML or template parsing per record: 5,000 records with codes, dates, lists and an expression."""
    import time

    t = one(mini, "  note: {expr: \"{{ record.NAME }}\"}\n  items: {each: LINES, fields: {code: C, value: V}}\n")
    t.translate(ROW)
    start = time.perf_counter()
    for _ in range(5000):
        t.translate(ROW)
    assert time.perf_counter() - start < 2.0
