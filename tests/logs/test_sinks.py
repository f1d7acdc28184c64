"""The recent-log stream sink: exactly 10,000 entries across processes, a new writer after fork, drop and count
when Redis is down or the queue is full, resume when Redis is back."""

import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable

import pytest
import redis
import structlog
from django.conf import settings
from django.test import Client
from django_redis import get_redis_connection

from logs.config import JsonFormatter
from logs.sinks import DEFAULT_DROPS_KEY, DEFAULT_STREAM_KEY, RedisStreamHandler, StdoutHandler
from tests.logs.conftest import ThrowawayRedis, stream_entries

logger = structlog.get_logger("tests.logs.sinks")


def _log_many(start: int, count: int, sink: RedisStreamHandler, chunk: int = 1000) -> None:
    for first in range(start, start + count, chunk):
        for number in range(first, min(first + chunk, start + count)):
            logger.info("bulk", seq=number)
        assert sink.flush_queue(timeout=30)


def _fork(work: Callable[[], object]) -> int:
    """Runs `work` in a forked child that exits 0 if it returned, 1 (traceback on stderr) if it raised."""
    child = os.fork()
    if child == 0:
        code = 1
        try:
            work()
            code = 0
        except BaseException:  # noqa: BLE001 - an assertion failure in the child must reach the parent
            traceback.print_exc()
        finally:
            os._exit(code)
    return child


def _exit_code(child: int) -> int:
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


def _fail_an_assertion() -> None:
    assert [] == ["an entry"], "the child's assertion failed"


def test_a_forked_child_reports_a_failed_assertion_in_its_exit_status():
    assert _exit_code(_fork(_fail_an_assertion)) == 1
    assert _exit_code(_fork(lambda: None)) == 0


@pytest.mark.slow
def test_the_stream_keeps_exactly_the_newest_10000_entries(log_sink):
    client = get_redis_connection("default")
    dropped_before = log_sink.dropped

    _log_many(0, 10_050, log_sink)

    assert client.xlen(DEFAULT_STREAM_KEY) == 10_000
    entries = stream_entries()
    assert [entry["seq"] for entry in entries] == list(range(50, 10_050))
    assert log_sink.dropped == dropped_before


@pytest.mark.slow
def test_two_processes_writing_still_never_exceed_10000_and_the_child_writes_after_fork(log_sink):
    client = get_redis_connection("default")
    log_sink.flush_queue()
    # the child: its own queue, thread and client, started lazily on its first line
    child = _fork(lambda: _log_many(100_000, 6_000, log_sink))
    _log_many(0, 6_000, log_sink)

    assert _exit_code(child) == 0
    assert client.xlen(DEFAULT_STREAM_KEY) == 10_000
    pids = {entry["pid"] for entry in stream_entries()}
    assert pids == {os.getpid(), child}


def test_a_full_queue_drops_and_counts_without_blocking():
    # given a sink whose writer cannot reach Redis and a queue of 5 lines
    sink = RedisStreamHandler(queue_size=5, redis_url="redis://127.0.0.1:1/0", register=False)
    sink.setFormatter(JsonFormatter())
    sink._thread = object()  # no writer thread: the queue only fills
    test_logger = logging.getLogger("tests.logs.fullqueue")
    test_logger.addHandler(sink)
    test_logger.propagate = False
    try:
        started = time.perf_counter()
        for number in range(12):
            test_logger.warning("line %s", number)
        elapsed = time.perf_counter() - started
    finally:
        test_logger.removeHandler(sink)
        test_logger.propagate = True
        sink._closed = True
    # then 5 are queued, 7 dropped and counted, and nothing waited
    assert sink._queue.qsize() == 5
    assert sink.dropped == 7
    assert sink.unreported_drops == 7
    assert elapsed < 0.5


def _wait_for_line(event: str, sink: RedisStreamHandler, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logger.info(event)
        sink.flush_queue()
        try:
            if any(entry["event"] == event for entry in stream_entries()):
                return True
        except redis.RedisError:
            pass
        time.sleep(0.2)
    return False


@pytest.fixture
def sink_on_throwaway_redis(log_sink, throwaway_redis, settings) -> ThrowawayRedis:
    """The process's sink, the cache (`/api/health`, `stream_entries`) on a Redis of this test's own."""
    log_sink.set_redis_url(throwaway_redis.url)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": throwaway_redis.url}}
    return throwaway_redis


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.usefixtures("test_urls")
def test_with_redis_stopped_requests_succeed_drops_are_counted_and_logging_resumes(log_sink, sink_on_throwaway_redis):
    dropped_before = log_sink.dropped
    logger.info("before_outage")
    assert log_sink.flush_queue()
    assert [entry["event"] for entry in stream_entries()] == ["before_outage"]

    sink_on_throwaway_redis.stop()
    # when Redis is down, requests that log still succeed, quickly
    started = time.perf_counter()
    responses = [Client().get("/api/test/ping", HTTP_X_REQUEST_ID=f"outage-{n}") for n in range(5)]
    elapsed = time.perf_counter() - started
    assert [response.status_code for response in responses] == [200] * 5
    assert elapsed < 2.0
    assert log_sink.flush_queue()
    # then every line of those requests (2 each: the view's and request_finished) was dropped and counted here
    assert log_sink.dropped - dropped_before >= 10
    assert log_sink.unreported_drops >= 10
    # and the suite's shared Redis never went down
    assert redis.Redis.from_url(settings.REDIS_URL).ping()

    # when Redis is back, logging resumes and the process's drops reach the shared counter
    sink_on_throwaway_redis.start()
    assert _wait_for_line("after_outage", log_sink, timeout=10)
    assert log_sink.unreported_drops == 0
    client = get_redis_connection("default")
    assert int(client.get(DEFAULT_DROPS_KEY)) == log_sink.dropped - dropped_before
    assert not any(entry.get("request_id", "").startswith("outage-") for entry in stream_entries())
    health = Client().get("/api/health").json()["logs"]
    assert health["dropped_reported_total"] == log_sink.dropped - dropped_before
    assert health["unreported_this_process"] == 0


def test_stdout_makes_the_line_before_it_takes_its_lock(tmp_path):
    """A thread waiting for the stdout handler's lock already holds its finished line: the lock covers the write
    alone, so a thread descheduled while formatting never keeps the others' lines waiting."""
    out = (tmp_path / "out.txt").open("w")
    handler = StdoutHandler()
    handler.setStream(out)
    handler.setFormatter(JsonFormatter())
    record = logging.LogRecord("nija.test", logging.INFO, __file__, 1, "check %s", ("done",), None)
    handler.acquire()  # another thread's write in progress
    try:
        writer = threading.Thread(target=handler.handle, args=(record,))
        writer.start()
        deadline = time.monotonic() + 5
        while "_nija_json" not in record.__dict__ and time.monotonic() < deadline:
            time.sleep(0.001)
        assert writer.is_alive()  # still waiting for the lock
        line = record.__dict__.get("_nija_json")
    finally:
        handler.release()
    writer.join(timeout=5)
    out.close()

    assert line is not None
    assert json.loads(line)["event"] == "check done"
    assert (tmp_path / "out.txt").read_text() == line + "\n"
