"""What the send path works out once per interface or target reads as what it replaced."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.base import OutboundResponse
from engine.bridge.model import RetryConfig, Target
from engine.retry import RetryPolicy
from engine.runtime.target import TargetClient
from engine.runtime.wire import _at, judge, plan, value_at
from engine.spec.loader import SpecSet

OBJECTS: list[Any] = [
    None, 0, "x", [], {}, {"a": 1}, {"a": None}, {"a": {"b": "2"}}, {"a": {"b": [1, 2]}}, {"a": [{"b": 1}]}, {"": {"a": 3}},
    {"data": {"code": 0, "msg": "ok"}}, {"data": "text"},
]
PATHS = ["a", "a.b", "a.b.c", "a[].b", "data.code", "data", ".", "", "a..b", "data.msg"]


def test_a_success_field_split_once_reads_as_the_dotted_path() -> None:
    for path in PATHS:
        parts = tuple(seg.removesuffix("[]") for seg in path.split(".") if seg)  # as Plan.field is built
        for obj in OBJECTS:
            assert _at(obj, parts) == value_at(obj, path), (path, obj)


def test_judge_reads_each_platforms_success_field(specset: SpecSet) -> None:
    for ref, ok, code, bad in [
        ("pe_system/pacs_pubReport", b'{"status":0,"message":""}', "0", b'{"status":-1,"message":"bad PECardNum"}'),
        ("jilin_imaging/savePatientExam", b'{"code":200,"msg":"ok"}', "200", b'{"code":500,"msg":"down"}'),
    ]:
        iface = specset.interface(ref)
        assert plan(iface) is plan(iface)  # worked out once, kept with the interface
        good = judge(iface, OutboundResponse(200, ok, {"Content-Type": "application/json"}))
        assert good.success and good.code == code
        failed = judge(iface, OutboundResponse(200, bad, {}))
        assert failed.success is False and failed.message in ("bad PECardNum", "down")


def test_the_retry_policy_is_the_targets_settings_built_once(specset: SpecSet) -> None:
    retry = RetryConfig(base_s=0.5, factor=3, max_delay_s=60, max_attempts=4, max_age_s=3600)
    client = TargetClient("t", Target(platform="pe_system", base_url="http://127.0.0.1:1", retry=retry),
                          specset.platforms["pe_system"], {}, {})
    assert client.policy == RetryPolicy(base_s=0.5, factor=3, max_delay_s=60, max_attempts=4, max_age_s=3600)
    assert client.policy is client.policy
    bad = TargetClient("t", Target(platform="pe_system", base_url="http://127.0.0.1:1", retry=RetryConfig(base_s=0)),
                       specset.platforms["pe_system"], {}, {})  # built: the setting fails where the policy is used, as before
    with pytest.raises(ValueError, match="base_s > 0"):
        bad.policy  # noqa: B018
