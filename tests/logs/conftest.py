"""Fixtures for the logging tests: the process's stream sink on a clean stream, an operator, the test URLs."""

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from logs.sinks import DEFAULT_DROPS_KEY, DEFAULT_STREAM_KEY, STREAM_FIELD, RedisStreamHandler, active_sink


@pytest.fixture
def log_sink() -> RedisStreamHandler:
    """This process's stream sink, its queue drained and the stream and drop counter emptied."""
    sink = active_sink()
    assert sink is not None, "settings.LOGGING has no stream sink"
    assert sink.flush_queue()
    client = get_redis_connection("default")
    client.delete(DEFAULT_STREAM_KEY, DEFAULT_DROPS_KEY)
    yield sink
    sink.set_redis_url(None)
    sink.flush_queue()


def stream_entries() -> list[dict[str, Any]]:
    """Every entry of the recent-log stream, oldest first."""
    client = get_redis_connection("default")
    return [json.loads(fields[STREAM_FIELD.encode()]) for _, fields in client.xrange(DEFAULT_STREAM_KEY)]


def stream_text() -> str:
    client = get_redis_connection("default")
    return "\n".join(fields[STREAM_FIELD.encode()].decode() for _, fields in client.xrange(DEFAULT_STREAM_KEY))


@pytest.fixture
def test_urls(settings) -> None:
    settings.ROOT_URLCONF = "tests.logs.urls"


@pytest.fixture
def operator_client(db) -> APIClient:
    operator = get_user_model().objects.create_user(
        username="operator", email="operator@example.com", password="not-logged-pw", is_staff=True
    )
    client = APIClient()
    client.force_login(operator)
    return client


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of captured output that is a JSON object (pytest may add other output)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines
