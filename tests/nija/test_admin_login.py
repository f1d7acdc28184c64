"""Admin login attempts are limited per client address; past the limit the password is not even checked."""

import socket

import pytest
from django.test import Client

from nija import ratelimit
from tests.accounts.factories import OperatorFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def three_attempts(settings, redis_client) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "admin_login": {"anonymous": (3, 300)}}


@pytest.fixture
def operator():
    return OperatorFactory(username="desk", password=PASSWORD)


def _attempt(client: Client, password: str, **extra):
    return client.post(LOGIN, {"username": "desk", "password": password, "next": "/admin/"}, **extra)


def test_past_the_limit_an_address_gets_429_even_with_the_right_password(three_attempts, operator):
    client = Client()

    wrong = [_attempt(client, "guess", REMOTE_ADDR="203.0.113.4").status_code for _ in range(3)]
    refused = _attempt(client, PASSWORD, REMOTE_ADDR="203.0.113.4")
    elsewhere = _attempt(Client(), PASSWORD, REMOTE_ADDR="203.0.113.5")

    assert wrong == [200, 200, 200]  # the form again, with its error
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 300
    assert "_auth_user_id" not in client.session  # not logged in
    assert elsewhere.status_code == 302  # another address logs in
    assert elsewhere.url == "/admin/"


def test_varying_x_forwarded_for_does_not_reset_the_count(three_attempts, operator, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    answers = [
        _attempt(Client(), "guess", REMOTE_ADDR="203.0.113.4", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(5)
    ]

    assert answers == [200, 200, 200, 429, 429]


def test_reading_the_login_page_is_not_an_attempt(three_attempts):
    client = Client()

    assert [client.get(LOGIN, REMOTE_ADDR="203.0.113.4").status_code for _ in range(5)] == [200] * 5
    assert _attempt(client, "guess", REMOTE_ADDR="203.0.113.4").status_code == 200


def test_redis_down_attempts_go_through_logged_and_counted(three_attempts, operator, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{dead_port}/0"}}
    before = ratelimit.fail_open_count()

    answers = [_attempt(Client(), "guess", REMOTE_ADDR="203.0.113.4").status_code for _ in range(5)]

    assert answers == [200] * 5
    assert ratelimit.fail_open_count() == before + 5
