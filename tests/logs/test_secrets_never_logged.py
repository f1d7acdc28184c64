"""A bearer token, a broker api secret and a password, at any depth, through structlog, stdlib `extra` and an
exception message, never reach stdout, the log files or the stream."""

import logging.config

import pytest
from django.conf import settings
from django.test import Client

from logs.config import build_logging
from logs.sinks import active_sink
from tests.logs.conftest import json_lines, stream_text

TOKEN = "tok_live_9f8e7d6c5b4a"
API_SECRET = "brokersecret_1a2b3c4d5e"
PASSWORD = "hunter2-correct-horse"
SECRETS = (TOKEN, API_SECRET, PASSWORD)


@pytest.fixture
def logging_with_files(tmp_path):
    """The real configuration with LOG_DIR set to a temporary directory; the settings' one restored after."""
    logging.config.dictConfig(build_logging(log_dir=str(tmp_path)))
    yield tmp_path
    sink = active_sink()
    if sink:
        sink.flush_queue()
    logging.config.dictConfig(settings.LOGGING)


@pytest.mark.django_db
@pytest.mark.usefixtures("test_urls")
def test_secrets_never_reach_stdout_files_or_stream(logging_with_files, redis_client, capfd):
    response = Client().post(
        "/api/test/secrets",
        {"token": TOKEN, "api_secret": API_SECRET, "password": PASSWORD},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        HTTP_X_REQUEST_ID="secrets-1",
    )
    assert response.status_code == 200
    assert active_sink().flush_queue()

    stdout = capfd.readouterr().out
    files = {path.name: path.read_text() for path in logging_with_files.glob("nija*.log")}
    stream = stream_text()
    # the lines were written everywhere ...
    assert sorted(files) == ["nija-daily.log", "nija-error.log", "nija.log"]
    for text in (stdout, files["nija.log"], files["nija-daily.log"], stream):
        assert '"broker_connected"' in text
        assert "login attempt password=[REDACTED]" in text
        assert '"broker_failed"' in text
    assert [line["event"] for line in json_lines(files["nija-error.log"])] == ["broker_failed"]
    # ... and no secret is in any of them
    for name, text in {"stdout": stdout, **files, "stream": stream}.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked into {name}"
    connected = next(line for line in json_lines(stdout) if line["event"] == "broker_connected")
    assert connected["broker"] == {"accounts": [{"api_secret": "[REDACTED]", "label": "main"}]}
    assert connected["headers"] == {"Authorization": "[REDACTED]"}
    assert connected["form"] == {"user": {"password": "[REDACTED]"}}
    assert connected["note"] == "called with Bearer [REDACTED]"
    failed = next(line for line in json_lines(stdout) if line["event"] == "broker_failed")
    assert failed["exception"][0]["exc_value"] == "broker refused api_secret=[REDACTED]"
