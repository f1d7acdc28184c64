"""Processes other than the web one log the same JSON: a management command here (the Celery worker's own
lines are checked in test_correlation)."""

import os
import subprocess
import sys

from django.conf import settings

from tests.logs.conftest import json_lines


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
