"""Every process logs the same JSON: a management command and gunicorn (master and worker) here; the Celery
worker's own lines are checked in test_correlation."""

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.logs.conftest import free_port, json_lines


def test_a_management_command_logs_json_lines_with_secrets_redacted():
    code = (
        "import logging, structlog;"
        "logging.getLogger('tests.command').warning('stdlib line', extra={'api_key': 'k-123', 'n': 1});"
        "structlog.get_logger('tests.command').error('structlog line', password='p-456')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "nija.settings.test", "TEST_REDIS_URL": settings.REDIS_URL}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    lines = [line for line in json_lines(result.stdout) if line.get("logger") == "tests.command"]
    assert [(line["level"], line["event"]) for line in lines] == [
        ("warning", "stdlib line"),
        ("error", "structlog line"),
    ]
    assert lines[0]["api_key"] == "[REDACTED]"
    assert lines[0]["n"] == 1
    assert lines[1]["password"] == "[REDACTED]"
    assert "k-123" not in result.stdout
    assert "p-456" not in result.stdout
    assert all(line["timestamp"].endswith("Z") and line["pid"] == lines[0]["pid"] for line in lines)


@pytest.mark.slow
@pytest.mark.django_db
def test_gunicorn_master_and_worker_lines_are_all_json():
    """The web command as the Procfile runs it (`gunicorn -c gunicorn.conf.py ...`): the master never loads Django,
    gunicorn.conf.py makes its lines JSON; the worker's are Django's LOGGING."""
    port = free_port()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "nija.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TEST_REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "nija.wsgi:application"]
    command += ["--worker-class", "gthread", "--workers", "1", "--threads", "2", "--bind", f"127.0.0.1:{port}"]
    command += ["--no-control-socket"]
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            status = _get_when_up(f"http://127.0.0.1:{port}/api/health", headers={"X-Request-ID": "gunicorn-1"})
        finally:
            server.terminate()
            server.wait(timeout=15)
        output.seek(0)
        text = output.read().decode(errors="replace")

    assert status == 200
    lines = [line for line in text.splitlines() if line.strip()]
    assert [line for line in lines if not line.startswith("{")] == []
    records = json_lines(text)
    master = [record for record in records if record["pid"] == server.pid]
    events = [record["event"] for record in master]
    assert events[0].startswith("Starting gunicorn")
    assert f"Listening at: http://127.0.0.1:{port} ({server.pid})" in events
    assert "Shutting down: Master" in events
    assert {(record["logger"], record["level"]) for record in master} == {("gunicorn.error", "info")}
    assert all(record["timestamp"].endswith("Z") for record in records)
    served = [record for record in records if record.get("request_id") == "gunicorn-1"]
    assert [record["event"] for record in served] == ["request_finished"]
    assert served[0]["pid"] != server.pid


def _get_when_up(url: str, headers: dict[str, str], timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:  # noqa: S310
                return response.status
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
