"""/metrics over a real socket, parsed with prometheus_client's own parser, moving with real deliveries."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from engine.admin.metrics import RateWindow
from engine.journal import State
from tests.admin.conftest import IFACE, Env, all_in, until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(env: Env) -> Samples:
    async with env.http.get(env.url + "/metrics") as resp:  # no token: Prometheus convention
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {(s.name, frozenset(s.labels.items())): s.value for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_counts_move_with_real_deliveries_retries_and_dead_letters(env: Env) -> None:
    before = await scrape(env)
    assert value(before, "specbridge_messages_sent_total", target="jilin", interface=IFACE) == 0
    assert value(before, "specbridge_journal_rows") == 0
    assert value(before, "specbridge_ready") == 1

    ids = await env.receive("pacs", 3)
    await until(lambda: all_in(env, ids, State.SENT))
    after = await scrape(env)
    assert value(after, "specbridge_records_received_total", source="pacs") == 3
    assert value(after, "specbridge_messages", interface=IFACE, state="SENT") == 3
    assert value(after, "specbridge_messages_sent_total", target="jilin", interface=IFACE) == 3
    assert value(after, "specbridge_attempt_duration_seconds_count", target="jilin") == 3
    assert value(after, "specbridge_attempt_duration_seconds_sum", target="jilin") > 0
    assert value(after, "specbridge_attempt_duration_seconds_bucket", target="jilin", le="+Inf") == 3
    assert value(after, "specbridge_token_refreshes_total", target="jilin", result="ok") == 1  # one token served all three
    assert value(after, "specbridge_token_refreshes_today", target="jilin") == 1
    assert value(after, "specbridge_token_alarm", target="jilin") == 0
    assert value(after, "specbridge_journal_rows") == 3
    assert value(after, "specbridge_journal_bytes", file="db") + value(after, "specbridge_journal_bytes", file="wal") > 0
    assert value(after, "specbridge_route_paused", route="exams") == 0

    await env.twin_down()  # the platform goes away: one failed attempt is retried, the second gives up
    (dead,) = await env.receive("pacs")
    await until(lambda: all_in(env, [dead], State.DEAD))
    down = await scrape(env)
    assert value(down, "specbridge_retries_total", target="jilin", interface=IFACE, outcome="retry") == 1
    assert value(down, "specbridge_dead_letters_total", target="jilin", interface=IFACE, stage="platform") == 1
    assert value(down, "specbridge_messages", interface=IFACE, state="DEAD") == 1
    assert value(down, "specbridge_attempt_duration_seconds_count", target="jilin") == 5

    await env.twin_up()  # a new platform process: the old token is refused, a second one is fetched
    state = await env.rt.journal.replay(dead)
    assert state is State.RECEIVED
    env.rt.wake("jilin")
    await until(lambda: all_in(env, [dead], State.SENT))
    up = await scrape(env)
    assert value(up, "specbridge_token_refreshes_total", target="jilin", result="ok") == 2
    assert value(up, "specbridge_messages", interface=IFACE, state="SENT") == 4
    assert value(up, "specbridge_messages", interface=IFACE, state="DEAD") == 0


async def test_openmetrics_is_offered_to_scrapers_that_ask(env: Env) -> None:
    async with env.http.get(env.url + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        assert (await resp.text()).rstrip().endswith("# EOF")


async def test_two_runtimes_in_one_process_keep_separate_registries(env: Env, specset, mappings, tmp_path) -> None:
    from engine.runtime.bridge import BridgeRuntime

    other = BridgeRuntime(env.rt.bridge, specset, mappings, base_dir=tmp_path / "other")
    other.metrics.received("pacs")
    await env.receive("pacs")
    assert other.metrics.registry is not env.rt.metrics.registry
    assert other.metrics.registry.get_sample_value("specbridge_records_received_total", {"source": "pacs"}) == 1
    assert env.rt.metrics.registry.get_sample_value("specbridge_records_received_total", {"source": "pacs"}) == 1


def test_rate_window_counts_the_last_minute_only() -> None:
    w = RateWindow(60)
    for t in range(0, 120):
        w.add(1000.0 + t)  # one a second for two minutes
    assert w.per_minute(1119.5) == 60.0
    assert w.per_minute(1200.0) == 0.0

