"""Cost of logging per request through the full stack (every middleware, django-structlog, a view that logs one
line: 3 JSON lines a request), with the recent-log stream sink on versus off, from one run.

Run: `.venv/bin/pytest tests/bench/bench_logging.py -s -o addopts=""` (or `make bench`). Prints figures; asserts
nothing about timing.
"""

import logging
import os
import statistics
import time
from collections.abc import Iterator

import pytest
from django.test import Client

from logs.sinks import RedisStreamHandler, StdoutHandler, active_sink

REQUESTS = 600
WARMUP = 100
ROUNDS = 5  # the three modes alternate, round after round; each figure is the median of its rounds


@pytest.fixture
def root_handlers() -> Iterator[list[logging.Handler]]:
    """The configured root handlers, stdout pointed at /dev/null (the cost of formatting and writing stays)."""
    root = logging.getLogger()
    original = list(root.handlers)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    stdout = next(handler for handler in original if isinstance(handler, StdoutHandler))
    real_stream = stdout.setStream(devnull)
    yield original
    root.handlers[:] = original
    stdout.setStream(real_stream)
    devnull.close()


def _time_requests(client: Client, count: int) -> float:
    started = time.perf_counter()
    for number in range(count):
        response = client.get("/api/test/ping", HTTP_X_REQUEST_ID=f"bench-{number}")
        assert response.status_code == 200
    return (time.perf_counter() - started) / count * 1e6


def _run(client: Client, handlers: list[logging.Handler], level: int) -> float:
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    _time_requests(client, WARMUP)
    return _time_requests(client, REQUESTS)


def test_logging_cost_per_request(settings, root_handlers, redis_client):
    settings.ROOT_URLCONF = "tests.logs.urls"
    client = Client()
    sink = active_sink()
    stream_handlers = [handler for handler in root_handlers if isinstance(handler, RedisStreamHandler)]
    without_stream = [handler for handler in root_handlers if not isinstance(handler, RedisStreamHandler)]
    level = logging.getLogger().level
    assert stream_handlers, "the stream sink is not configured"

    drops_before = sink.dropped
    rounds: dict[str, list[float]] = {"off": [], "stdout": [], "stream": []}
    for _ in range(ROUNDS):
        rounds["off"].append(_run(client, [], logging.CRITICAL + 1))
        rounds["stdout"].append(_run(client, without_stream, level))
        rounds["stream"].append(_run(client, root_handlers, level))
    off, stdout_only, with_stream = (statistics.median(rounds[mode]) for mode in ("off", "stdout", "stream"))
    drain_started = time.perf_counter()
    drained = sink.flush_queue(timeout=60)
    drain_ms = (time.perf_counter() - drain_started) * 1000
    logging.getLogger().setLevel(level)

    print()
    print(f"logging bench: {ROUNDS} rounds x {REQUESTS} GET requests per mode, full middleware stack, 3 lines each")
    print(f"  logging disabled            : {off:8.1f} us/request")
    print(f"  stdout only (stream off)    : {stdout_only:8.1f} us/request  (logging costs {stdout_only - off:.1f} us)")
    print(f"  stdout + Redis stream (on)  : {with_stream:8.1f} us/request  (logging costs {with_stream - off:.1f} us)")
    print(f"  ratio stream on / off       : {with_stream / stdout_only:8.3f}")
    print(f"  ratio logging cost on / off : {(with_stream - off) / (stdout_only - off):8.3f}")
    print(f"  stream drops during the run : {sink.dropped - drops_before}; queue drained after {drain_ms:.0f} ms")
    print(f"  stream length now           : {redis_client.xlen(sink.stream_key)}")
    assert drained
