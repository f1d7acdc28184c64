"""GET /api/logs: operators only; every filter returns exactly the matching entries, newest first."""

import json

import pytest
from django.contrib.auth import get_user_model
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from logs.sinks import DEFAULT_STREAM_KEY, STREAM_FIELD

pytestmark = pytest.mark.django_db

# name, timestamp, level, logger, request_id, user_id, account_id (None: absent)
ENTRIES = [
    ("a", "2026-01-01T10:00:00.000000Z", "info", "risk.services", "r1", 1, 10),
    ("b", "2026-01-01T10:01:00.000000Z", "warning", "risk.engine", "r1", 1, 11),
    ("c", "2026-01-01T10:02:00.000000Z", "error", "trading.api", "r2", 2, 10),
    ("d", "2026-01-01T10:03:00.000000Z", "debug", "risk", "r2", 2, None),
    ("e", "2026-01-01T10:04:00.000000Z", "critical", "riskwatch", "r3", None, None),
    ("f", "2026-01-01T10:05:00.000000Z", "info", "celery.worker", "r1", None, 12),
]
SEEDED = {entry[0] for entry in ENTRIES}


@pytest.fixture
def seeded_stream(log_sink):
    client = get_redis_connection("default")
    for event, timestamp, level, logger, request_id, user_id, account_id in ENTRIES:
        entry = {"timestamp": timestamp, "level": level, "logger": logger, "event": event, "request_id": request_id}
        if user_id is not None:
            entry["user_id"] = user_id
        if account_id is not None:
            entry["account_id"] = account_id
        client.xadd(DEFAULT_STREAM_KEY, {STREAM_FIELD: json.dumps(entry)})


def _events(client: APIClient, query: str) -> list[str]:
    response = client.get(f"/api/logs?{query}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["results"])
    # the query's own request lines are in the stream too: keep only the seeded entries
    return [entry["event"] for entry in body["results"] if entry["event"] in SEEDED]


@pytest.mark.usefixtures("seeded_stream")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["f", "e", "d", "c", "b", "a"]),
        ("level=warning", ["e", "c", "b"]),
        ("level=ERROR", ["e", "c"]),
        ("level=debug", ["f", "e", "d", "c", "b", "a"]),
        ("logger=risk", ["d", "b", "a"]),
        ("logger=riskwatch", ["e"]),
        ("logger=risk.engine", ["b"]),
        ("logger=risk.eng", []),
        ("logger=trading", ["c"]),
        ("logger=trading.api", ["c"]),
        ("correlation_id=r1", ["f", "b", "a"]),
        ("user_id=2", ["d", "c"]),
        ("account_id=10", ["c", "a"]),
        ("since=2026-01-01T10:01:00Z&until=2026-01-01T10:03:00Z", ["d", "c", "b"]),
        ("since=2026-01-01T10:04:30Z", ["f"]),
        ("until=2026-01-01T09:59:59Z", []),
        ("level=info&correlation_id=r2", ["c"]),
        ("logger=risk&account_id=11&user_id=1", ["b"]),
        ("correlation_id=nobody", []),
    ],
)
def test_filters_return_exactly_the_matching_entries_newest_first(operator_client, query, expected):
    assert _events(operator_client, query) == expected


@pytest.mark.usefixtures("seeded_stream")
def test_limit_keeps_the_newest(operator_client):
    response = operator_client.get("/api/logs?limit=2&until=2026-01-01T10:05:00Z")
    assert [entry["event"] for entry in response.json()["results"]] == ["f", "e"]


@pytest.mark.usefixtures("seeded_stream")
def test_the_default_limit_is_100(operator_client):
    client = get_redis_connection("default")
    for number in range(150):
        client.xadd(DEFAULT_STREAM_KEY, {STREAM_FIELD: json.dumps({"event": f"bulk-{number}", "level": "info"})})
    results = operator_client.get("/api/logs").json()["results"]
    assert len(results) == 100


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("level=loud", "level"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("correlation_id=bad%20id", "correlation_id"),
        ("user_id=" + "9" * 65, "user_id"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("logger=risk.", "logger"),
        ("logger=.risk", "logger"),
        ("logger=risk..engine", "logger"),
        ("logger=risk%20engine", "logger"),
    ],
)
def test_a_bad_filter_value_is_a_400_naming_the_field(operator_client, query, field):
    response = operator_client.get(f"/api/logs?{query}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == [field]


def test_only_operators_may_read_logs(db, log_sink):
    user = get_user_model().objects.create_user(username="bot-owner", email="owner@example.com", password="x")
    client = APIClient()
    client.force_login(user)

    assert client.get("/api/logs").status_code == 403
    assert APIClient().get("/api/logs").status_code in (401, 403)


def test_a_line_logged_in_this_process_is_queryable(operator_client, log_sink):
    import structlog

    structlog.contextvars.bind_contextvars(request_id="live-1", user_id=42, account_id=7)
    try:
        structlog.get_logger("risk.services").warning("limit_near", ratio="0.95")
    finally:
        structlog.contextvars.clear_contextvars()
    assert log_sink.flush_queue()

    results = operator_client.get("/api/logs?correlation_id=live-1&user_id=42&account_id=7&level=warning").json()
    [entry] = results["results"]
    assert entry["event"] == "limit_near"
    assert entry["logger"] == "risk.services"
    assert entry["ratio"] == "0.95"
    assert entry["level"] == "warning"
