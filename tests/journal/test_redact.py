"""redact(): what may reach a log line."""

from __future__ import annotations

from engine.journal import redact


def test_id_numbers_and_mobiles_are_masked_next_to_cjk() -> None:
    text = "身份证号110105199003071234错误，旧证123456780101123，手机13812345678。"
    assert redact(text) == "身份证号110105********1234错误，旧证123456******123，手机138****5678。"
    assert redact("11010519900307123X") == "110105********123X"


def test_longer_digit_runs_are_left_alone() -> None:
    assert redact("order 1101051990030712345678") == "order 1101051990030712345678"


def test_personal_fields_in_json_xml_and_forms() -> None:
    assert redact('{"patientName": "张三", "idCardNo":"x", "examNo":"E1"}') == '{"patientName": "***", "idCardNo":"***", "examNo":"E1"}'
    assert redact("<brxm>李四</brxm><sfzh>x</sfzh><jg>ok</jg>") == "<brxm>***</brxm><sfzh>***</sfzh><jg>ok</jg>"
    assert redact("uid=1&mobile=13800000000&name=王五") == "uid=1&mobile=***&name=***"


def test_bytes_none_and_length_limit() -> None:
    assert redact(None) == ""
    assert redact("手机13812345678".encode()) == "手机138****5678"
    assert redact("x" * 30, limit=10) == "xxxxxxxxxx...[20 more]"
