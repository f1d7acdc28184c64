"""A bearer token, a broker api secret and a password, at any depth, through structlog, stdlib `extra` and an
exception message, never reach stdout, the log files or the stream."""

import logging.config

import pytest
import structlog
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils.log import log_response

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


QUERY_SECRET = "SECRETVALUE123"


def _every_sink(stdout: str, log_dir) -> dict[str, str]:
    """The text each sink holds: stdout, the three files, the stream (its queue drained first)."""
    assert active_sink().flush_queue()
    files = {path.name: path.read_text() for path in log_dir.glob("nija*.log")}
    return {"stdout": stdout, **files, "stream": stream_text()}


def _assert_nowhere(texts: dict[str, str], secrets: tuple[str, ...]) -> None:
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret} leaked into {name}"


@pytest.mark.usefixtures("redis_client")
def test_request_headers_and_request_objects_are_redacted(logging_with_files, capfd):
    # given a request carrying a bearer token, a session cookie and a token in its query string
    request = RequestFactory().get(
        f"/api/x?access_token={QUERY_SECRET}&page=2",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        HTTP_COOKIE=f"sessionid={API_SECRET}",
        HTTP_ACCEPT="application/json",
    )
    # when its headers (an HttpHeaders mapping, not a dict) and the request itself are logged
    structlog.get_logger("tests.logs.headers").info("incoming", headers=request.headers, request=request)
    logging.getLogger("tests.logs.headers").info("incoming stdlib", extra={"headers": request.headers})

    texts = _every_sink(capfd.readouterr().out, logging_with_files)
    # then the lines exist everywhere and no secret is in any of them
    for name in ("stdout", "nija.log", "nija-daily.log", "stream"):
        assert '"incoming"' in texts[name], name
        assert '"incoming stdlib"' in texts[name], name
    _assert_nowhere(texts, (TOKEN, API_SECRET, QUERY_SECRET))
    lines = {line["event"]: line for line in json_lines(texts["stdout"]) if line["logger"] == "tests.logs.headers"}
    for event in ("incoming", "incoming stdlib"):
        assert lines[event]["headers"] == {
            "Authorization": "[REDACTED]",
            "Cookie": "[REDACTED]",
            "Accept": "application/json",
        }
    assert lines["incoming"]["request"] == "<WSGIRequest: GET '/api/x?access_token=[REDACTED]&page=2'>"


@pytest.mark.usefixtures("redis_client")
def test_log_response_with_the_request_attached_is_redacted(logging_with_files, capfd):
    # given Django's own 4xx/5xx logging, which attaches the request object to the record
    request = RequestFactory().get(f"/api/x?token={QUERY_SECRET}&api_key={API_SECRET}", HTTP_AUTHORIZATION=TOKEN)
    log_response("Forbidden: %s", request.path, response=HttpResponse(status=403), request=request)

    texts = _every_sink(capfd.readouterr().out, logging_with_files)
    _assert_nowhere(texts, (TOKEN, API_SECRET, QUERY_SECRET))
    line = next(line for line in json_lines(texts["stdout"]) if line["logger"] == "django.request")
    assert (line["level"], line["event"], line["status_code"]) == ("warning", "Forbidden: /api/x", 403)
    assert line["request"] == "<WSGIRequest: GET '/api/x?token=[REDACTED]&api_key=[REDACTED]"


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_client")
def test_a_404_with_a_secret_in_the_query_string_logs_no_secret(logging_with_files, capfd):
    response = Client().get(
        f"/api/no-such-endpoint?access_token={QUERY_SECRET}&password={PASSWORD}",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        HTTP_X_REQUEST_ID="secrets-404",
    )
    assert response.status_code == 404

    texts = _every_sink(capfd.readouterr().out, logging_with_files)
    _assert_nowhere(texts, (TOKEN, PASSWORD, QUERY_SECRET))
    lines = json_lines(texts["stdout"])
    not_found = next(line for line in lines if line["logger"] == "django.request")
    assert not_found["event"] == "Not Found: /api/no-such-endpoint"
    assert (
        not_found["request"] == "<WSGIRequest: GET '/api/no-such-endpoint?access_token=[REDACTED]&password=[REDACTED]"
    )
    finished = next(line for line in lines if line["event"] == "request_finished")
    assert finished["request"] == "GET /api/no-such-endpoint?access_token=[REDACTED]&password=[REDACTED]"
    assert '"Not Found: /api/no-such-endpoint"' in texts["stream"]
