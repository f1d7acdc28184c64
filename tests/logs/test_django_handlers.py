"""Django's default handlers never write next to ours: with DEBUG on, a django.* line is one JSON line on stdout,
not also a plain (unredacted) copy on stderr, and the JSON line carries no `message` key another formatter added."""

import logging
import logging.config

import pytest
from django.test import Client
from django.utils.log import configure_logging

from tests.logs.conftest import json_lines


@pytest.fixture
def debug_logging(settings):
    """DEBUG on and logging configured as `django.setup()` does: Django's DEFAULT_LOGGING first, then LOGGING."""
    settings.DEBUG = True
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    yield
    logging.config.dictConfig(settings.LOGGING)


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_logging")
def test_with_debug_on_a_django_request_line_is_one_json_line_and_nothing_plain(capfd):
    response = Client().get("/api/no-such-endpoint?password=hunter2", HTTP_X_REQUEST_ID="debug-404")
    assert response.status_code == 404

    captured = capfd.readouterr()
    lines = [line for line in json_lines(captured.out) if line["logger"] == "django.request"]
    assert [line["event"] for line in lines] == ["Not Found: /api/no-such-endpoint"]
    assert "message" not in lines[0]
    assert "Not Found" not in captured.err
    assert [line for line in captured.out.splitlines() if "Not Found" in line and not line.startswith("{")] == []
    assert "hunter2" not in captured.out + captured.err


@pytest.mark.usefixtures("debug_logging")
def test_with_debug_on_a_django_server_line_is_one_json_line_and_nothing_plain(capfd):
    logging.getLogger("django.server").info('"%s" %s %s', "GET /api/health HTTP/1.1", 200, 17)

    captured = capfd.readouterr()
    lines = [line for line in json_lines(captured.out) if line["logger"] == "django.server"]
    assert [line["event"] for line in lines] == ['"GET /api/health HTTP/1.1" 200 17']
    assert "message" not in lines[0]
    assert "GET /api/health" not in captured.err


def test_django_loggers_have_no_handlers_of_their_own_and_propagate_to_ours():
    for name in ("django", "django.request", "django.server"):
        logger = logging.getLogger(name)
        assert (name, logger.handlers, logger.propagate) == (name, [], True)
