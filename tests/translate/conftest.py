"""A small self-contained specs tree (source view, canonical model, platform), so rule tests do not
move when the real platform specs change; the sample-mapping tests use the real tree."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.spec import load_specs
from engine.spec.loader import SpecSet
from engine.translate import MappingSet, load_mappings

REPO = Path(__file__).resolve().parents[2]

FILES = {
    "canonical/report.yaml": """
        id: report
        kind: model
        title: report
        fields:
          report_no: {type: string, required: true}
          status: {type: string, codes: status, required: true}
          report_time: {type: datetime, format: "yyyy-MM-dd HH:mm:ss", required: true}
          birth_date: {type: date, format: yyyy-MM-dd}
          price: {type: "decimal(6,2)"}
          note: {type: string}
          flag: {type: bool}
          patient:
            type: object
            required: true
            fields:
              name: {type: string, required: true}
              sex: {type: string, codes: status}
          items:
            type: list
            card: 1..n
            fields:
              code: {type: string, required: true}
              value: {type: string}
              seq: {type: int}
              parts:
                type: list
                fields:
                  name: {type: string, required: true}
                  owner: {type: string}
    """,
    "common/codes/status.yaml": """
        title: status
        values: {"1": one, "2": two, "9": other}
    """,
    "sources/lis/platform.yaml": """
        id: lis
        title: lis
        transport: {kind: dbview}
    """,
    "sources/lis/interfaces/row.yaml": """
        id: row
        title: row
        binding: {view: {name: V_ROW, key: [RNO]}}
        request:
          format: row
          fields:
            RNO: {type: string, required: true}
            ST: {type: string}
            TIME: {type: datetime, format: yyyyMMddHHmmss}
            BIRTH: {type: string}
            PRICE: {type: string}
            NAME: {type: string}
            SEX: {type: string}
            IDNO: {type: string}
            OPT: {type: string}
            LINES:
              type: list
              fields:
                C: {type: string}
                V: {type: string}
                PARTS: {type: list, fields: {N: {type: string}}}
    """,
    "platforms/plat/platform.yaml": """
        id: plat
        title: plat
        transport: {kind: soap}
        auth: {kind: credential, carry: {in: body, name: cred}}
    """,
    "platforms/plat/interfaces/up.yaml": """
        id: up
        title: up
        request:
          format: soap
          fields:
            payload:
              type: object
              carried_as: xml
              root: root
              required: true
              fields:
                rec:
                  type: list
                  xml_item: item
                  card: 1..n
                  fields:
                    no: {type: string, required: true, xml_attribute: true}
                    st: {type: string, codes: st, xml_attribute: true}
            cred: {type: object, carried_as: xml, root: root, required: true, fields: {user: {type: string, required: true}}}
            mode: {type: string, required: true, default: "A"}
        response: {format: text}
    """,
    "platforms/plat/codes/st.yaml": """
        title: st
        values: {A: a, B: b}
    """,
}


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


@pytest.fixture
def mini(tmp_path: Path) -> Callable[..., tuple[SpecSet, MappingSet]]:
    """mini(mappings={name: yaml}, codes={name: yaml}, strict=False) -> (specset, mapping set)."""

    def make(mappings: dict[str, str], codes: dict[str, str] | None = None, strict: bool = False) -> tuple[SpecSet, MappingSet]:
        root = tmp_path / "specs"
        write_tree(root, FILES)
        write_tree(root / "mappings", {f"{k}.yaml": v for k, v in mappings.items()})
        write_tree(root / "mappings" / "codes", {f"{k}.yaml": v for k, v in (codes or {}).items()})
        specset = load_specs(root, strict=True)
        return specset, load_mappings(root / "mappings", specset, strict=strict)

    return make


@pytest.fixture(scope="session")
def real_specs() -> SpecSet:
    return load_specs(REPO / "specs", strict=False)


@pytest.fixture(scope="session")
def real_mappings(real_specs: SpecSet) -> MappingSet:
    return load_mappings(REPO / "specs" / "mappings", real_specs, strict=False)
