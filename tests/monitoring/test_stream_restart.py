"""The stream end to end with the real events process and a Redis server of the test's own: a bot's rejected check
reaches the operators' dashboard and that bot's own channel and no other; then that Redis restarts (every key
and connection gone) and the next event still arrives, with no process restarted."""

import json
import urllib.request

import pytest

from nija.events import flush_published, listener_reports
from tests.monitoring.sse import SseStream
from tests.monitoring.stream_support import bearer, make_desk, open_stream, rejected_check, start_events_process
from tests.servers import RedisServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def own_redis(settings):
    server = RedisServer().start()
    settings.EVENTS_REDIS_URL = server.url  # this process publishes into it too
    yield server
    server.remove()


def _position_event(stream: SseStream) -> dict:
    return stream.events_until("position")[-1].json()


def test_a_rejected_check_reaches_the_dashboard_and_its_bot_only_and_survives_a_redis_restart(own_redis, redis_client):
    desk = make_desk()
    events = start_events_process(redis_url=own_redis.url)
    pid = events.pid
    try:
        dashboard = open_stream(events, ["dashboard"], bearer(desk.operator_token))
        own = open_stream(events, [f"account-{desk.account.pk}"], bearer(desk.bot_token))
        other = open_stream(events, [f"account-{desk.other_account.pk}"], bearer(desk.other_bot_token))

        first = rejected_check(desk.account, desk.bot_token)
        assert flush_published()

        for stream in (dashboard, own):
            event = _position_event(stream)
            assert [reason["code"] for reason in event.pop("reasons")] == ["max_position_size", "account_exposure"]
            assert event | {"position_id": first["position_id"]} == {
                "position_id": first["position_id"],
                "account_id": desk.account.pk,
                "symbol": "BTC-USD",
                "side": "long",
                "status": "rejected",
                "quantity": "1.00000000",
                "notional": "95000.00000000",
            }
        assert other.next_event(timeout=1.0) is None

        own_redis.restart()

        for stream, channel in ((dashboard, "dashboard"), (own, f"account-{desk.account.pk}")):
            reset = stream.events_until("stream-reset", timeout=20)[-1]
            assert reset.json() == {"channels": [channel]}
        second = rejected_check(desk.account, desk.bot_token)
        assert flush_published()

        assert _position_event(dashboard)["position_id"] == second["position_id"]
        assert _position_event(own)["position_id"] == second["position_id"]
        assert [event.event for event in _drain(other)] == ["stream-reset"]  # told it may have missed, nothing else
        listener = _health(events.base_url)["events"]["listener_this_process"]
        assert (listener["connected"], listener["reconnects"]) == (True, 1)
        reported = [report for report in listener_reports() if report["process"].endswith(f":{pid}")]
        assert [(report["connected"], report["reconnects"]) for report in reported] == [(True, 1)]
        assert events.process.poll() is None
        assert events.pid == pid
    finally:
        events.stop()


def _drain(stream: SseStream) -> list:
    events = []
    while (event := stream.next_event(timeout=1.0)) is not None:
        events.append(event)
    return events


def _health(base_url: str) -> dict:
    try:
        with urllib.request.urlopen(base_url + "/api/health", timeout=5) as response:  # noqa: S310 - loopback http
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # 503 while a dependency recovers still carries the body
        return json.loads(error.read())
