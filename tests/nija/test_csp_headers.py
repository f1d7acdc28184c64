"""The Content-Security-Policy headers (nija.middleware.CachedPolicyCSPMiddleware): built once from the settings for
responses no view changed the policy of, rebuilt when the settings change; a view's own change still applies."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import TokenKind
from tests.accounts.factories import issue_token

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self' http://127.0.0.1:8001 http://localhost:8001; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


@pytest.fixture
def known_origins(settings):
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {**settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]}
        | {"connect-src": ["'self'", "http://127.0.0.1:8001", "http://localhost:8001"]}
    }


@pytest.mark.django_db
def test_api_answers_and_pages_carry_the_policy_every_time(known_origins, redis_client):
    bot = issue_token(TokenKind.BOT)
    answers = [APIClient().get("/api/market/BTC-USD", HTTP_AUTHORIZATION=f"Bearer {bot}") for _ in range(2)]
    answers.append(Client().get("/admin/login/"))
    answers.append(Client().get("/api/health"))

    assert [_directives(answer["Content-Security-Policy"]) for answer in answers] == [_directives(POLICY)] * 4
    assert all("Content-Security-Policy-Report-Only" not in answer for answer in answers)


@pytest.mark.django_db
def test_a_changed_setting_is_followed_at_once(known_origins, settings, redis_client):
    assert "img-src 'self' data:" in Client().get("/api/health")["Content-Security-Policy"]

    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'self'"]}}
    response = Client().get("/api/health")

    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert response["Content-Security-Policy-Report-Only"] == "default-src 'self'"


@pytest.mark.django_db
def test_a_view_that_changes_its_policy_keeps_its_change(known_origins, redis_client):
    redoc = Client().get("/api/redoc")

    assert _directives(redoc["Content-Security-Policy"])["style-src"] == "'self' 'unsafe-inline'"
    assert _directives(Client().get("/api/health")["Content-Security-Policy"])["style-src"] == "'self'"
