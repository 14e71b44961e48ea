"""The msgspec fast path never says "valid" where the complete walker finds anything.

Differential: every rule the fast path moves into C or into its generated post-checks (calendar
dates through msgspec's own parser, decimals checked arithmetically, byte lengths, patterns,
empties) is compared with the walker on hostile values, for the fixture platform and for every
JSON body in specs/.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.spec import load_specs
from engine.spec.compiled import CompiledBody
from engine.spec.dates import compile_format
from engine.spec.fast import _NATIVE, FastCompiler
from engine.spec.model import Field
from engine.spec.nodes import Node
from engine.spec.sample import sample
from engine.spec.validate import Walker

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def fast_valid(body: CompiledBody, raw: bytes) -> bool:
    """What the fast path alone answers (False: it has doubts and the walker decides)."""
    assert body._decoder is not None
    try:
        obj = body._decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False
    return body._check is None or bool(body._check(obj))


def walker_valid(body: CompiledBody, value: Any, plaintext: bool = False) -> bool:
    """The complete walker alone (validate() would answer decoded data by the fast path too)."""
    res = body._walk(value, plaintext)
    return res.valid and not res.warnings


def agree(body: CompiledBody, msg: Any) -> tuple[bool, bool]:
    """The fast path on the wire bytes and on the decoded message (as the runtime hands it) say the same,
    and neither says valid where the walker finds anything."""
    raw = msgspec.json.encode(msg)
    decoded = msgspec.json.decode(raw)
    fast, complete = fast_valid(body, raw), walker_valid(body, decoded)
    assert not (fast and not complete), f"fast path accepts what the walker rejects: {json.dumps(msg, ensure_ascii=False)[:300]}"
    assert body.fast_valid(decoded) == fast, f"decoded data answered unlike its bytes: {json.dumps(msg, ensure_ascii=False)[:300]}"
    return fast, complete


def one_field(node: Node, required: bool = True) -> Node:
    """A body with the single field `v` = node."""
    node.required = required
    node.nullable = not required
    return Node(name="$", kind="object", spec=Field(type="object"), children={"v": node})


def compiled(node: Node) -> tuple[msgspec.json.Decoder[Any], Any]:
    tp, check = FastCompiler().compile(node)
    return msgspec.json.Decoder(tp), check


# -- calendar dates through msgspec's parser ------------------------------------------------

YEARS = ["0000", "0001", "1582", "1600", "1700", "1800", "1900", "1996", "2000", "2023", "2024", "2100", "2400", "9999"]
MONTHS = [f"{m:02d}" for m in range(14)]
DAYS = [f"{d:02d}" for d in range(33)]
TIMES = ["00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "19:05:09", "99:99:99"]
SHAPES = [
    "",
    "2024-3-18",
    "2024-03-18T10:00:00",
    "2024-03-18t10:00:00",
    "2024-03-18 10:00:00Z",
    "2024-03-18 10:00:00+08:00",
    "2024-03-18 10:00:00.000",
    "2024-03-18 10:00:00.5",
    "2024-03-18 10:00",
    " 2024-03-18 10:00:00",
    "2024-03-18  10:00:00",
    "2024-03-18 10:00:00\n",
    "２０２４-03-18 10:00:00",
    "2024-03-18 10:00:0\u0660",
    '2024-03-18 10:00:0"',
    "2024-03-18 10:00:0\\",
    '2024-03-18","2024-03-18',
    "20240318",
    "20240318100000",
    "10:00:00",
    "10:00:00.123",
    "2024-03-18T10:00:00.123",
    "2024-03-18 10:00:00.123",
]


def _dates_for(fmt: str) -> list[str]:
    days = [f"{y}-{m}-{d}" for y in YEARS for m in MONTHS for d in DAYS]
    if fmt.startswith("HH"):
        frac = ".123" if fmt.endswith("SSS") else ""
        return [t + frac for t in TIMES] + [f"{h:02d}:{mi:02d}:{s:02d}{frac}" for h in range(26) for mi in (0, 59, 60) for s in (0, 59, 60)]
    if "HH" not in fmt:
        return days
    sep = "T" if "'T'" in fmt else " "
    frac = ".123" if fmt.endswith("SSS") else ""
    return [f"{d}{sep}{t}{frac}" for d in days for t in (TIMES if d.endswith(("-28", "-29", "-30", "-31")) else TIMES[:3])]


@pytest.mark.parametrize("fmt", sorted(_NATIVE))
@pytest.mark.parametrize("required", [True, False])
def test_native_dates_match_the_calendar_exactly(fmt: str, required: bool) -> None:
    kind = "time" if fmt.startswith("HH") else "datetime" if "HH" in fmt else "date"
    node = Node(name="v", kind=kind, spec=Field(type=kind), date=compile_format(fmt))
    dec, check = compiled(one_field(node, required))
    assert check is not None
    for value in [*_dates_for(fmt), *SHAPES]:
        try:
            fast = bool(check(dec.decode(msgspec.json.encode({"v": value}))))
        except msgspec.ValidationError:
            fast = False
        complete = node.date.check(value) or (value == "" and not required)  # type: ignore[union-attr]
        assert not (fast and not complete), (fmt, value)
        if complete and not value.startswith("0000") and value.isascii():  # the fast path isn't needlessly strict
            assert fast, (fmt, value)


def test_absent_and_null_optional_dates_take_the_fast_path() -> None:
    node = Node(name="v", kind="datetime", spec=Field(type="datetime"), date=compile_format("yyyy-MM-dd HH:mm:ss"))
    dec, check = compiled(one_field(node, required=False))
    for raw in (b"{}", b'{"v": null}', b'{"v": ""}'):
        assert check(dec.decode(raw)), raw


# -- decimals, checked arithmetically --------------------------------------------------------


def _decimal_values(rng: random.Random) -> list[Any]:
    out: list[Any] = [0, 0.0, -0.0, 1, -1, 5, 10**15, 10**16, 0.5, 0.05, 0.005, 0.1 + 0.2, 1e-05, 1.5e-07, 1e15, 1e16, 1e22]
    out += [999.99, 999.995, 1000, 1000.0, 999.999, -999.99, 99.999, 0.29, 1.005, 285.1, 12.5, 123456789012345.6]
    for _ in range(3000):
        intd, frac = rng.randint(0, 16), rng.randint(0, 9)
        digits = "".join(rng.choice("0123456789") for _ in range(frac))
        text = (str(rng.randint(0, 10**intd - 1)) if intd else "0") + (f".{digits}" if frac else "")
        out.append(json.loads(("-" if rng.random() < 0.2 else "") + text))
    for _ in range(500):
        out.append(rng.uniform(-2000, 2000))
    return out


DECIMALS = [(5, 2), (2, 2), (1, 0), (3, 0), (10, 4), (12, 6), (15, 2), (15, 7), (15, 15), (18, 2), (20, 4)]


@pytest.mark.parametrize(("precision", "scale"), DECIMALS)
def test_decimal_check_is_exactly_the_walkers(precision: int, scale: int) -> None:
    node = Node(name="v", kind="decimal", spec=Field(type=f"decimal({precision},{scale})"), precision=precision, scale=scale)
    dec, check = compiled(one_field(node))
    assert check is not None
    for value in _decimal_values(random.Random(precision * 100 + scale)):
        raw = msgspec.json.encode({"v": value})
        w = Walker()
        w.value(node, msgspec.json.decode(raw)["v"], "v")
        complete = not w.errors
        try:
            fast = bool(check(dec.decode(raw)))
        except msgspec.ValidationError:
            fast = False
        assert not (fast and not complete), (precision, scale, value)
        if precision <= 15:  # the arithmetic test is exact, not merely safe
            assert fast == complete, (precision, scale, value)


# -- whole messages ------------------------------------------------------------------------

HOSTILE: list[Any] = [
    None, "", " ", "x" * 1000, "AB12\n", "\u0000", "张" * 40, "€", 0, -1, 1.5, 1e-05, True, [], {}, "1", "-1", 10**30,
    "2024-02-30", "2023-02-29", "2024-02-29", "2023-02-29 10:00:00", "2024-02-29 10:00:00", "2024-02-29T10:00:00",
    "2024-02-29 10:00:00.0", "19900230", "19900307", "20240229100000", "20230229100000",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _with(msg: Any, path: tuple[Any, ...], value: Any) -> Any:
    msg = copy.deepcopy(msg)
    cur = msg
    for p in path[:-1]:
        cur = cur[p]
    if value is _DELETE:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return msg


_DELETE = object()


def _mutate_all(body: CompiledBody, msg: Any) -> None:
    agree(body, msg)
    for path in _paths(msg):
        for value in (*HOSTILE, _DELETE):
            agree(body, _with(msg, path, value))
    if isinstance(msg, dict):
        agree(body, {**msg, "unexpected": 1})


def test_fixture_platform_every_field_every_hostile_value() -> None:
    upload = load_specs(FIXTURES / "good").interface("acme/upload")
    body = upload.request
    assert body is not None and body.has_fast_path
    base = {
        "orderNo": "AB12", "patient": {"name": "张三", "sex": "1"}, "checkTime": "2024-02-29 10:00:00", "birthday": "19900307",
        "price": 285.1, "count": 3, "urgent": False, "certNo": "C1", "certType": "1", "reportType": "0", "reportText": "r",
        "items": [{"code": "X1", "subs": [{"value": "abc"}]}], "tags": ["a", "bb"], "pdf": "AAE=",
    }
    assert agree(body, base) == (True, True)
    _mutate_all(body, base)
    for name in ("张三李四王", "abcdefghij", "€€€€€€€€€€", "€" * 11, "张三李四王五", "abcdefghijk"):  # 10 bytes of GB2312 (€ is one '?')
        agree(body, {**base, "patient": {"name": name}})


def _json_bodies() -> list[tuple[str, CompiledBody]]:
    specs = load_specs(ROOT / "specs", strict=False)
    out = []
    for pid, plat in sorted(specs.platforms.items()):
        for iid, iface in sorted(plat.interfaces.items()):
            for part in ("request", "response"):
                body = getattr(iface, part)
                if body is not None and body.has_fast_path:
                    out.append((f"{pid}/{iid}.{part}", body))
    return out


def test_every_spec_body_every_field_every_hostile_value() -> None:
    bodies = _json_bodies()
    assert len(bodies) > 20
    for _, body in bodies:
        _mutate_all(body, sample(body.node, full=True))


def test_the_benchmarked_message_takes_the_fast_path() -> None:
    """bench/validate.py measures the fast path; a full savePatientExam must stay on it."""
    body = load_specs(ROOT / "specs", strict=False).interface("jilin_imaging/savePatientExam").request
    assert body is not None
    msg = sample(body.node, full=True)
    assert agree(body, msg) == (True, True)
    for birthday, time in (("2024-02-29", "2024-02-29 23:59:59"), ("2000-02-29", "1900-02-28 00:00:00")):
        assert agree(body, {**msg, "birthday": birthday, "regTime": time}) == (True, True)
    bad = (("2023-02-29", "2024-02-29 10:00:00"), ("1900-02-29", "2024-02-29 10:00:00"), ("2024-02-28", "2100-02-29 10:00:00"))
    for birthday, time in bad:
        assert agree(body, {**msg, "birthday": birthday, "regTime": time}) == (False, False)
    assert agree(body, {**msg, "price": 999.995}) == (False, False)
    assert agree(body, {**msg, "price": 1000}) == (False, False)
    assert agree(body, {**msg, "price": 999.99}) == (True, True)


# -- decoded data (the runtime validates the translated message it decoded) --------------------


def _upload_message() -> tuple[CompiledBody, dict[str, Any]]:
    body = load_specs(FIXTURES / "good").interface("acme/upload").request
    assert body is not None
    return body, {
        "orderNo": "AB12", "patient": {"name": "张三", "sex": "1"}, "checkTime": "2024-02-29 10:00:00", "birthday": "19900307",
        "price": 285.1, "count": 3, "urgent": False, "certNo": "C1", "certType": "1", "reportType": "0", "reportText": "r",
        "items": [{"code": "X1", "subs": [{"value": "abc"}]}], "tags": ["a", "bb"], "pdf": "AAE=",
    }


class _Dict(dict):  # type: ignore[type-arg]
    pass


def test_decoded_data_takes_the_fast_path_only_when_it_is_what_json_decodes_to() -> None:
    """msgspec.convert would take a tuple for a list or a Decimal, a NaN or an infinity for a number; the
    walker rejects them, so such data (and any other Python object) is left to the walker."""
    body, base = _upload_message()
    assert body.fast_valid(base) and body.validate(base).valid
    odd: list[tuple[str, Any]] = [
        ("tags", ("a", "bb")), ("tags", {"a"}), ("price", Decimal("285.1")), ("price", float("nan")), ("price", float("inf")),
        ("count", 3.0), ("checkTime", datetime(2024, 2, 29, 10)), ("orderNo", b"AB12"),
        ("items", [{"code": "X1", "subs": ({"value": "abc"},)}]),
    ]
    for name, value in odd:
        msg = {**base, name: value}
        assert not body.fast_valid(msg), name
        assert body.validate(msg).valid == walker_valid(body, msg), name
        assert not body.validate(msg).valid, name  # each is something the walker refuses
    for msg in (_Dict(base), {**base, "patient": _Dict(name="张三", sex="1")}):  # a dict of another type: the walker answers
        assert not body.fast_valid(msg) and body.validate(msg).valid


def test_plaintext_takes_a_fast_path_of_its_own_that_checks_encrypted_fields_by_their_rules() -> None:
    """Before encryption (the runtime's check) an encrypted field's plaintext rules apply; on the wire only its presence."""
    body = load_specs(ROOT / "specs", strict=False).interface("jilin_imaging/savePatientExam").request
    assert body is not None
    msg = sample(body.node, full=True)
    long_id = {**msg, "idCardNo": "1" * 51}  # over the plaintext length 50; a ciphertext is longer still
    assert body.fast_valid(msg, plaintext=True) and body.fast_valid(msg)
    assert body.fast_valid(long_id) and body.validate(long_id).valid  # wire: the value is ciphertext
    assert not body.fast_valid(long_id, plaintext=True)
    res = body.validate(long_id, plaintext=True)
    assert [(e.path, e.rule) for e in res.errors] == [("idCardNo", "length")]
    assert not body.validate(msgspec.json.encode(long_id), plaintext=True).valid  # the same for bytes
    for path in _paths(msg):
        for value in (*HOSTILE, _DELETE):
            m = _with(msg, path, value)
            for plaintext in (False, True):
                fast, complete = body.fast_valid(m, plaintext=plaintext), walker_valid(body, m, plaintext)
                assert not (fast and not complete), (path, value, plaintext)
                assert body.fast_valid(msgspec.json.encode(m), plaintext=plaintext) == fast, (path, value, plaintext)


def test_the_delivered_message_takes_the_fast_path() -> None:
    """The runtime validates each pe_system pacs_pubReport it delivers as decoded data, before encryption."""
    body = load_specs(ROOT / "specs", strict=False).interface("pe_system/pacs_pubReport").request
    assert body is not None
    msg = sample(body.node, full=True)
    assert body.fast_valid(msg, plaintext=True) and body.validate(msg, plaintext=True).valid
    assert not body.fast_valid({**msg, "ResultDangerLevel": 2}, plaintext=True)
    assert [(e.path, e.rule) for e in body.validate({**msg, "ResultDangerLevel": 2}, plaintext=True).errors] == [
        ("ResultDangerLevel", "type")]
