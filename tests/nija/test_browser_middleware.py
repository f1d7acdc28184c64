"""Sessions, session authentication and messages are skipped by /api/ requests that carry a bearer token
(nija.middleware): such a request is authenticated by its token alone, whatever cookie it also carries; the pages,
the admin and cookie requests keep all three, CSRF included."""

import asyncio

import pytest
from django.test import AsyncClient, Client
from rest_framework.test import APIClient

from accounts.models import TokenKind
from tests.accounts.factories import OperatorFactory, issue_token

API_PROBE = "/api/probe/middleware"
PAGE_PROBE = "/probe/middleware"


@pytest.fixture
def probe_urls(settings) -> None:
    settings.ROOT_URLCONF = "tests.nija.urls_middleware"


def staff_session_client(client_class=Client, **kwargs) -> Client:
    client = client_class(**kwargs)
    client.force_login(OperatorFactory(username="staffer"))
    return client


@pytest.mark.django_db
def test_a_bearer_api_request_runs_without_session_messages_or_session_user(probe_urls, redis_client):
    client = staff_session_client()

    response = client.get(API_PROBE, HTTP_AUTHORIZATION="Bearer anything")

    assert response.status_code == 200
    assert response.json() == {"session": False, "messages": False, "user": None}
    assert "sessionid" not in response.cookies
    assert "Cookie" not in response.get("Vary", "")


@pytest.mark.parametrize("header", ["bearer x", "BEARER x", "Bearer", "Bearer  a b"])
@pytest.mark.django_db
def test_the_bearer_scheme_is_read_as_drf_reads_it(probe_urls, redis_client, header):
    assert staff_session_client().get(API_PROBE, HTTP_AUTHORIZATION=header).json()["session"] is False


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwdw==", "Token abc", "Bearerx abc", "Bearer\xa0abc"])
@pytest.mark.django_db
def test_api_requests_without_a_bearer_token_keep_the_session(probe_urls, redis_client, header):
    client = staff_session_client()
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}

    response = client.get(API_PROBE, **extra)

    assert response.json() == {"session": True, "messages": True, "user": "staffer"}
    assert "sessionid" in response.cookies  # the probe wrote to the session: saved, cookie set


@pytest.mark.django_db
def test_pages_keep_the_session_even_with_a_bearer_header(probe_urls, redis_client):
    client = staff_session_client()

    response = client.get(PAGE_PROBE, HTTP_AUTHORIZATION="Bearer anything")

    assert response.json() == {"session": True, "messages": True, "user": "staffer"}


@pytest.mark.django_db
def test_the_admin_keeps_its_session_with_a_bearer_header(redis_client):
    client = staff_session_client()
    client.force_login(OperatorFactory(username="admin-user", is_superuser=True))

    assert client.get("/admin/", HTTP_AUTHORIZATION="Bearer anything").status_code == 200
    assert Client().get("/admin/", HTTP_AUTHORIZATION="Bearer anything").status_code == 302  # to the login page


@pytest.mark.django_db(transaction=True)
def test_the_async_chain_skips_them_too(probe_urls, redis_client):
    """The events process serves the same middleware under ASGI."""
    cookies = staff_session_client().cookies

    async def requests() -> tuple[dict, dict]:
        client = AsyncClient()
        client.cookies = cookies
        with_token = await client.get(API_PROBE, headers={"Authorization": "Bearer anything"})
        without = await client.get(API_PROBE)
        return with_token.json(), without.json()

    with_token, without = asyncio.run(requests())

    assert with_token == {"session": False, "messages": False, "user": None}
    assert without == {"session": True, "messages": True, "user": "staffer"}


@pytest.mark.django_db
def test_a_bearer_request_is_never_authenticated_by_its_session_cookie(redis_client):
    """An operator's session cookie beside a bot token (or a bad token) gives the request nothing of the operator."""
    bot = issue_token(TokenKind.BOT)
    client = staff_session_client(APIClient)
    assert client.get("/api/logs").status_code == 200  # the session alone: an operator

    assert client.get("/api/logs", HTTP_AUTHORIZATION=f"Bearer {bot}").status_code == 403  # the bot
    bad = client.get("/api/logs", HTTP_AUTHORIZATION="Bearer " + "x" * 43)
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "authentication_failed"


@pytest.mark.django_db
def test_a_bearer_post_needs_no_csrf_token_and_a_cookie_post_still_does(redis_client):
    feed_token = issue_token(TokenKind.FEED)
    strict = staff_session_client(APIClient, enforce_csrf_checks=True)
    body = {"symbol": "BTC-USD", "price": "50000"}

    cookie_only = strict.put("/api/market/BTC-USD", body, format="json")
    with_token = strict.put("/api/market/BTC-USD", body, format="json", HTTP_AUTHORIZATION=f"Bearer {feed_token}")

    assert cookie_only.status_code == 403
    assert "CSRF" in cookie_only.json()["error"]["message"]
    assert with_token.status_code == 200, with_token.content
    assert "csrftoken" not in with_token.cookies
    assert "sessionid" not in with_token.cookies
