"""Fixtures for the logging tests: the process's stream sink on a clean stream, an operator, the test URLs, and a
throwaway Redis server a test may stop and start (never the suite's shared one)."""

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayRedis:
    """A redis-server of one test's own on a free port: no persistence, bound to 127.0.0.1, stoppable at will."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self._directory)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        """Kill the server (an outage: the data goes with it) and wait until it is gone."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None


@pytest.fixture
def throwaway_redis(tmp_path) -> ThrowawayRedis:
    server = ThrowawayRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
