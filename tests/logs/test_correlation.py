"""One correlation id from a bot's request into every task it caused: eagerly here, with a real worker below."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client

from logs.selectors import LogQuery, log_entry_list
from nija.celery import app as celery_app
from tests.logs.conftest import json_lines

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_urls")]


def test_an_eager_task_logs_under_the_request_id(operator_client, log_sink, monkeypatch):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)

    response = Client().post("/api/test/enqueue", HTTP_X_REQUEST_ID="abc-123")

    assert response.status_code == 202
    assert response["X-Request-ID"] == "abc-123"
    assert log_sink.flush_queue()
    results = operator_client.get("/api/logs?correlation_id=abc-123").json()["results"]
    assert [(entry["logger"], entry["event"].split("[")[0]) for entry in results] == [
        ("django_structlog.middlewares.request", "request_finished"),
        ("celery.app.trace", "Task tests.logs.record_correlation"),
        ("tests.logs.tasks", "correlation_task_ran"),
        ("tests.logs.views", "enqueue_view_called"),
    ]
    assert results[2]["note"] == "from-view"


def _worker_env() -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="nija.settings.test",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        TEST_REDIS_URL=settings.REDIS_URL,
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def _broker_queue_of_its_own() -> Iterator[str]:
    """A queue name no earlier run or other test uses; afterwards only the broker keys and bindings that carry it
    (the queue, the worker's pidbox) are removed: the broker database is never flushed."""
    name = f"logs-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        yield name
    finally:
        own_keys = list(broker.scan_iter(match=f"*{name}*"))
        if own_keys:
            broker.delete(*own_keys)
        for binding in broker.scan_iter(match="_kombu.binding.*"):
            members = [member for member in broker.smembers(binding) if name.encode() in member]
            if members:
                broker.srem(binding, *members)
        broker.close()


def _start_worker(stdout, queue: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "nija", "worker", "--include", "tests.logs.tasks"]
    command += ["--pool", "prefork", "--concurrency", "1", "--without-gossip", "--without-mingle"]
    command += ["--without-heartbeat", "--queues", queue, "--hostname", f"{queue}@%h"]
    return subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        env=_worker_env(),
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=5)


def _wait_for_task_lines(request_id: str, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = log_entry_list(query=LogQuery(correlation_id=request_id, limit=1000))
        if any(entry["event"] == "task_succeeded" for entry in entries):
            return entries
        time.sleep(0.25)
    return []


@pytest.mark.slow
def test_a_real_worker_logs_the_task_under_the_request_id(operator_client, log_sink):
    with tempfile.TemporaryFile() as worker_output, _broker_queue_of_its_own() as queue:
        worker = _start_worker(worker_output, queue)
        try:
            response = Client().post(f"/api/test/enqueue?queue={queue}", HTTP_X_REQUEST_ID="abc-123")
            assert response.status_code == 202
            assert response["X-Request-ID"] == "abc-123"
            assert log_sink.flush_queue()
            assert _wait_for_task_lines("abc-123", timeout=60), "the worker never logged the task"
        finally:
            _stop_worker(worker)
        worker_output.seek(0)
        worker_lines = json_lines(worker_output.read().decode(errors="replace"))

    results = operator_client.get("/api/logs?correlation_id=abc-123").json()["results"]
    events = [entry["event"] for entry in reversed(results)]
    web = [entry for entry in results if entry["pid"] == os.getpid()]
    task = [entry for entry in results if entry["pid"] != os.getpid()]
    assert [entry["event"] for entry in reversed(web)] == [
        "enqueue_view_called",
        "task_enqueued",
        "request_finished",
    ]
    task_events = [entry["event"].split("[")[0] for entry in reversed(task)]
    assert task_events[:2] == ["task_started", "correlation_task_ran"]
    # then django-structlog's success line and Celery's own stdlib line (in JSON, with the same ids)
    assert sorted(task_events[2:]) == ["Task tests.logs.record_correlation", "task_succeeded"]
    enqueued = next(entry for entry in web if entry["event"] == "task_enqueued")
    assert {entry["task_id"] for entry in task} == {enqueued["child_task_id"]}
    assert events.index("task_enqueued") < events.index("task_started")
    # the worker process itself wrote JSON lines to its stdout (its own start-up lines included)
    assert any(line.get("logger", "").startswith("celery") for line in worker_lines)
    assert any(line.get("event") == "correlation_task_ran" for line in worker_lines)
