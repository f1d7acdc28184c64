"""GET /api/metrics/stream against the real events process (uvicorn): who may read which channel, answered as
JSON before any stream starts; the per-token cap; replays from the store; and what an idle stream holds."""

import time
from importlib import import_module

import psutil
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client

from accounts.models import ApiToken, TokenKind
from accounts.services import api_token_revoke, user_update
from accounts.tokens import token_digest
from nija.event_store import EventPosition
from nija.events import flush_published, publish
from nija.stream_leases import leases_held
from risk.services.activation import trading_instance_activation_set
from tests.accounts.factories import issue_token
from tests.monitoring.sse import SseStream
from tests.monitoring.stream_support import Desk, bearer, make_desk, open_stream, session, start_events_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

STREAM_CAP = 3
RECHECK_SECONDS = 0.5


@pytest.fixture(scope="module")
def events(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        process = start_events_process(
            EVENTS_MAX_STREAMS_PER_TOKEN=str(STREAM_CAP), EVENTS_CREDENTIALS_RECHECK_SECONDS=str(RECHECK_SECONDS)
        )
    yield process
    process.stop()


@pytest.fixture
def desk(redis_client) -> Desk:
    return make_desk()


# ---------------------------------------------------------------------------------------------- who reads what
def _credentials(desk: Desk, who: str) -> dict[str, str]:
    return {
        "operator session": session(desk.operator_session),
        "operator token": bearer(desk.operator_token),
        "bot": bearer(desk.bot_token),
        "feed": bearer(desk.feed_token),
        "nobody": {},
    }[who]


@pytest.mark.parametrize(
    ("who", "channel"),
    [
        ("operator session", "dashboard"),
        ("operator token", "dashboard"),
        ("operator token", "account-{account}"),
        ("bot", "account-{account}"),
    ],
)
def test_readers_open_the_channels_they_may_read(events, desk, who, channel):
    channel = channel.format(account=desk.account.pk)

    stream = open_stream(events, [channel], _credentials(desk, who))

    stream.close()


@pytest.mark.parametrize(
    ("who", "channel", "status", "code"),
    [
        ("bot", "account-{other}", 404, "not_found"),
        ("bot", "dashboard", 403, "permission_denied"),
        ("nobody", "dashboard", 401, "not_authenticated"),
        ("feed", "dashboard", 403, "permission_denied"),
        ("operator token", "account-999999999", 404, "not_found"),
        ("operator token", "prices", 404, "not_found"),
        ("operator token", "account-01", 404, "not_found"),
        ("bot", "account-{account}\n", 404, "not_found"),  # a channel no event is ever published on
    ],
)
def test_a_refused_reader_gets_a_json_error_before_any_stream(events, desk, who, channel, status, code):
    channel = channel.format(other=desk.other_account.pk, account=desk.account.pk)

    stream = SseStream(events.base_url, channels=[channel], headers=_credentials(desk, who))

    assert (stream.status, stream.content_type) == (status, "application/json")
    assert stream.json()["error"]["code"] == code
    assert leases_held(f"token-{_token_id(desk, who)}") == 0


def test_a_bot_asking_for_its_own_and_another_accounts_channel_gets_404(events, desk):
    channels = [f"account-{desk.account.pk}", f"account-{desk.other_account.pk}"]

    stream = SseStream(events.base_url, channels=channels, headers=bearer(desk.bot_token))

    assert (stream.status, stream.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ([], {}, "channel"),
        ([f"account-{n}" for n in range(1, 12)], {}, "channel"),
        (["dashboard"], {"Last-Event-ID": "dashboard:not-a-number"}, "Last-Event-ID"),
        (["dashboard"], {"Last-Event-ID": "garbage"}, "Last-Event-ID"),
        (["dashboard"], {"Last-Event-ID": "error"}, "Last-Event-ID"),
        (["dashboard"], {"Last-Event-ID": "dashboard:" + "9" * 3000}, "Last-Event-ID"),
        (["dashboard"], {"Last-Event-ID": "dashboard:\u00b2"}, "Last-Event-ID"),  # a digit to str.isdigit only
    ],
)
def test_malformed_stream_requests_get_a_json_400(events, desk, query, headers, field):
    stream = SseStream(events.base_url, channels=query, headers=bearer(desk.operator_token) | headers)

    body = stream.json()
    assert (stream.status, body["error"]["code"]) == (400, "validation_error")
    assert field in body["error"]["fields"]


def test_the_web_process_refuses_the_stream_and_names_the_events_process(desk):
    response = Client().get("/api/metrics/stream?channel=dashboard", HTTP_AUTHORIZATION=f"Bearer {desk.operator_token}")

    assert (response.status_code, response.json()["error"]["code"]) == (421, "served_by_events_process")


def test_the_page_origin_may_open_the_stream_with_its_session_cookie(events, desk):
    origin = "http://127.0.0.1:8000"

    stream = open_stream(events, ["dashboard"], session(desk.operator_session) | {"Origin": origin})

    assert stream.header("Access-Control-Allow-Origin") == origin
    assert stream.header("Access-Control-Allow-Credentials") == "true"
    stream.close()
    refused = SseStream(events.base_url, channels=["dashboard"], headers={"Origin": origin})
    assert refused.status == 401
    assert refused.header("Access-Control-Allow-Origin") == origin  # the page can read why


def _token_id(desk: Desk, who: str) -> int | str:
    from accounts.models import ApiToken
    from accounts.tokens import token_digest

    token = {"bot": desk.bot_token, "feed": desk.feed_token, "operator token": desk.operator_token}.get(who)
    return ApiToken.objects.get(digest=token_digest(token)).pk if token else "none"


# ---------------------------------------------------------------------------------------------- the cap
def test_open_streams_are_capped_per_token_and_a_closed_stream_frees_its_place(events, desk):
    streams = [open_stream(events, ["dashboard"], bearer(desk.operator_token)) for _ in range(STREAM_CAP)]

    over = SseStream(events.base_url, channels=["dashboard"], headers=bearer(desk.operator_token))
    other_reader = open_stream(events, ["dashboard"], session(desk.operator_session))

    assert (over.status, over.json()["error"]["code"]) == (429, "too_many_streams")
    holder = f"token-{_token_id(desk, 'operator token')}"
    assert leases_held(holder) == STREAM_CAP
    streams.pop().close()
    _wait_until(lambda: leases_held(holder) == STREAM_CAP - 1)
    streams.append(open_stream(events, ["dashboard"], bearer(desk.operator_token)))
    for stream in [*streams, other_reader]:
        stream.close()


# ---------------------------------------------------------------------------------------------- credentials that fall
def _revoke_bot_token(desk: Desk) -> None:
    api_token_revoke(token=ApiToken.objects.get(digest=token_digest(desk.bot_token)), actor=None)


def _deactivate_account(desk: Desk) -> None:
    trading_instance_activation_set(instance_id=desk.account.pk, active=False, actor=None, reason="closed")


def _demote_operator(desk: Desk) -> None:
    operator = ApiToken.objects.get(digest=token_digest(desk.operator_token)).user
    user_update(user=operator, actor=None, is_staff=False)


def _log_out(desk: Desk) -> None:
    import_module(settings.SESSION_ENGINE).SessionStore(desk.operator_session).delete()


@pytest.mark.parametrize(
    ("who", "channel", "fall"),
    [
        ("bot", "account-{account}", _revoke_bot_token),
        ("bot", "account-{account}", _deactivate_account),
        ("operator token", "dashboard", _demote_operator),
        ("operator session", "dashboard", _log_out),
    ],
)
def test_an_open_stream_ends_once_its_credentials_no_longer_stand(events, desk, who, channel, fall):
    channel = channel.format(account=desk.account.pk)
    stream = open_stream(events, [channel], _credentials(desk, who))
    holder = _holder(desk, who)
    assert leases_held(holder) == 1

    with transaction.atomic():
        fall(desk)

    closed = stream.next_event(timeout=10 * RECHECK_SECONDS + 5)
    assert (closed.event, closed.json()) == ("stream-closed", {"reason": "credentials_no_longer_valid"})
    with pytest.raises(ConnectionError):
        stream.next_event(timeout=5)
    _wait_until(lambda: leases_held(holder) == 0)
    again = SseStream(events.base_url, channels=[channel], headers=_credentials(desk, who))
    assert again.status in (401, 403)


def test_streams_whose_credentials_stand_go_on(events, desk):
    bot = open_stream(events, [f"account-{desk.account.pk}"], bearer(desk.bot_token))
    operator = open_stream(events, ["dashboard"], session(desk.operator_session))
    time.sleep(4 * RECHECK_SECONDS)

    publish(event_type="metrics", data={"n": 1}, account_id=desk.account.pk)
    assert flush_published()

    assert bot.next_event().json() == {"n": 1}
    assert operator.next_event().json() == {"n": 1}
    bot.close()
    operator.close()


def _holder(desk: Desk, who: str) -> str:
    if who == "operator session":
        return f"session-user-{ApiToken.objects.get(digest=token_digest(desk.operator_token)).user_id}"
    return f"token-{_token_id(desk, who)}"


# ---------------------------------------------------------------------------------------------- replay
def test_a_client_coming_back_with_its_last_event_id_gets_what_it_missed_from_the_store(events, desk):
    stream = open_stream(events, ["dashboard"], bearer(desk.operator_token))
    publish(event_type="metrics", data={"n": 1})
    assert flush_published()
    first = stream.next_event()
    stream.close()

    for n in (2, 3):
        publish(event_type="metrics", data={"n": n})
    assert flush_published()
    back = open_stream(events, ["dashboard"], bearer(desk.operator_token) | {"Last-Event-ID": first.id})
    replayed = [back.next_event(), back.next_event()]

    assert first.json() == {"n": 1}
    assert [event.json() for event in replayed] == [{"n": 2}, {"n": 3}]
    assert [event.event for event in replayed] == ["metrics", "metrics"]
    back.close()


def test_a_last_event_id_of_another_store_epoch_is_answered_with_stream_reset(events, desk):
    publish(event_type="metrics", data={"n": 1})
    assert flush_published()
    stale = f"dashboard:{EventPosition(epoch=7, entry='1-0').to_id()}"

    stream = open_stream(events, ["dashboard"], bearer(desk.operator_token) | {"Last-Event-ID": stale})

    reset = stream.next_event()
    assert (reset.event, reset.json()) == ("stream-reset", {"channels": ["dashboard"]})
    assert EventPosition.from_id(int(reset.id.split(":")[1])).epoch != 7
    stream.close()


# ---------------------------------------------------------------------------------------------- what a stream holds
def test_idle_streams_hold_no_database_connection_and_no_thread_each(events, desk):
    process = psutil.Process(events.pid)
    threads_before = process.num_threads()
    bots = [issue_token(TokenKind.BOT, instance=desk.account) for _ in range(4)]

    streams = [open_stream(events, ["dashboard"], session(desk.operator_session)) for _ in range(STREAM_CAP)]
    for token in bots:
        streams += [open_stream(events, [f"account-{desk.account.pk}"], bearer(token)) for _ in range(STREAM_CAP)]
    time.sleep(0.5)  # anything a stream would keep open is open by now

    assert len(streams) == 15
    # The credentials check opens one connection for a moment every RECHECK_SECONDS: a stream's would stay.
    assert min(_database_connections_of(events.pid) for _ in range(5)) == 0
    assert process.num_threads() - threads_before <= 2  # not one a stream
    for stream in streams:
        stream.close()


def _database_connections_of(pid: int) -> int:
    """Connections to this test database from the events process (its client ports are its sockets)."""
    ports = {conn.laddr.port for conn in psutil.Process(pid).net_connections(kind="tcp")}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_port FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return sum(1 for (port,) in cursor.fetchall() if port in ports)


def _wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
