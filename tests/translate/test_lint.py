"""Lint findings for mappings, each located at its file and line."""

from __future__ import annotations

import pytest

from engine.errors import SpecError
from engine.translate import lint_mappings, load_mappings

BAD = """\
from: sources/lis/row
to: canonical/report
fields:
  report_no: RNO
  status: {from: ST, codes: no_such_map}
  report_time: {from: TIME_TYPO, date: {}}
  patient.nmae: NAME
  items:
    each: LINES
    fields:
      code: $.NOT_THERE
      bogus: C
"""


def lines(findings) -> dict[int, str]:
    return {f.line: f.message for f in findings}


def test_each_finding_has_file_and_line(mini) -> None:
    _, ms = mini({"bad": BAD})
    got = lines(ms.findings)
    assert all(f.file == "specs/mappings/bad.yaml" for f in ms.findings)
    assert "unknown code map `no_such_map`" in got[5]
    assert "source path `TIME_TYPO` is not in lis/row" in got[6]
    assert "target `patient.nmae` is not a field of canonical/report" in got[7]
    assert "source path `$.NOT_THERE`" in got[11]
    assert "target `items[].bogus`" in got[12]
    required = [f for f in ms.findings if "required target field" in f.message]
    assert {f.message.split("`")[1] for f in required} == {"patient.name"}
    assert required[0].line == 3  # the `fields:` block that leaves it out


def test_required_inside_each_and_unknown_ends(mini) -> None:
    _, ms = mini({
        "a": "from: sources/lis/row\nto: canonical/report\nfields:\n  report_no: RNO\n  status: {value: '1'}\n"
             "  report_time: {value: '2024-01-01 00:00:00'}\n  patient: {fields: {name: NAME}}\n"
             "  items:\n    each: LINES\n    fields:\n      value: V\n",
        "b": "from: canonical/nope\nto: plat/missing\nfields: {}\n",
    })
    got = [str(f) for f in ms.findings]
    assert "specs/mappings/a.yaml:10: required target field `items[].code` of canonical/report is not mapped" in got
    assert any(s.startswith("specs/mappings/b.yaml:1: from: unknown canonical model `nope`") for s in got)
    assert any(s.startswith("specs/mappings/b.yaml:2: to: unknown interface `plat/missing`") for s in got)


def test_yaml_shape_errors_and_bad_rules(mini) -> None:
    _, ms = mini({
        "typo": "from: canonical/report\nto: plat/up\nfields:\n  payload.rec: {each: items, feilds: {}}\n",
        "combo": "from: canonical/report\nto: canonical/report\nfields:\n  report_no: {from: report_no, value: x}\n"
                 "  status: {expr: '{{ record.status '}\n  report_time: {from: report_time, date: {in: yyyyQQ}}\n",
    })
    got = [str(f) for f in ms.findings]
    assert any(s.startswith("specs/mappings/typo.yaml:4: unknown key `feilds`") for s in got), got
    assert any(s.startswith("specs/mappings/combo.yaml:4: a rule needs exactly one of") for s in got), got
    assert any(s.startswith("specs/mappings/combo.yaml:5: expression syntax") for s in got), got
    assert any(s.startswith("specs/mappings/combo.yaml:6: date: unknown letter 'Q'") for s in got), got


def test_code_map_values_checked_against_target_table(mini) -> None:
    m = "from: sources/lis/row\nto: canonical/report\nfields:\n  report_no: RNO\n  status: {from: ST, codes: sm}\n" \
        "  report_time: {from: TIME, date: {}}\n  patient.name: NAME\n  items: {each: LINES, fields: {code: C}}\n"
    _, ms = mini({"m": m}, {"sm": "title: s\nmap:\n  x: '1'\n  y: '7'\ndefault: '8'\n"})
    got = [str(f) for f in ms.findings]
    assert "specs/mappings/codes/sm.yaml:4: `y` maps to '7', which is not in code table `status` of the target field" in got
    assert "specs/mappings/codes/sm.yaml:5: default '8' is not in code table `status` of the target field" in got


def test_strict_load_raises_and_check_hook(mini) -> None:
    specset, ms = mini({"bad": BAD})
    with pytest.raises(SpecError):
        load_mappings(ms.root, specset, strict=True)
    # the hook `specbridge check` calls: loads <specs>/mappings itself
    hook = [str(f) for f in lint_mappings(specset)]
    assert hook == [str(f) for f in ms.findings]


def test_real_mappings_are_clean(real_mappings) -> None:
    assert [str(f) for f in real_mappings.findings] == []
