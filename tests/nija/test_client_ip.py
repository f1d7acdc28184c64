"""The client address every limiter counts: X-Forwarded-For read only as far as TRUSTED_PROXY_COUNT vouches for it,
so a client that varies the header per request is still one client."""

import pytest
from django.test import RequestFactory

from accounts.authentication import AUTH_FAILURE_LIMIT
from nija.client_ip import client_ip

CLIENT = "198.51.100.23"
PROXY = "10.0.0.2"


def _request(forwarded_for: str | None = None, remote_addr: str = CLIENT):
    headers = {} if forwarded_for is None else {"HTTP_X_FORWARDED_FOR": forwarded_for}
    return RequestFactory().get("/", REMOTE_ADDR=remote_addr, **headers)


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0

    assert client_ip(_request("203.0.113.9")) == CLIENT
    assert client_ip(_request("203.0.113.9, 203.0.113.10")) == CLIENT
    assert client_ip(_request()) == CLIENT


@pytest.mark.parametrize(
    ("trusted", "forwarded_for", "expected"),
    [
        (1, "203.0.113.9", "203.0.113.9"),  # the compose proxy overwrote the header with its peer
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # a client's own entry, left of what our proxy appended
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.7", "203.0.113.9"),
        (1, " 2001:DB8::1 ", "2001:db8::1"),
        (2, "203.0.113.9", PROXY),  # fewer entries than proxies: did not come through all of them
        (1, "", PROXY),
        (1, "not-an-address", PROXY),  # never a free-form Redis key
        (1, "203.0.113.9:4431", PROXY),
    ],
)
def test_behind_trusted_proxies_the_entry_they_vouch_for_is_the_client(settings, trusted, forwarded_for, expected):
    settings.TRUSTED_PROXY_COUNT = trusted

    assert client_ip(_request(forwarded_for, remote_addr=PROXY)) == expected


def test_behind_trusted_proxies_a_request_without_the_header_is_its_peer(settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert client_ip(_request(remote_addr=PROXY)) == PROXY


# ---------------------------------------------------------------------------------------------- through the API
@pytest.mark.django_db
def test_varying_x_forwarded_for_does_not_dodge_the_failed_token_limit(api_client, redis_client, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    unknown_token = "u" * 43

    answers = [
        api_client.get(
            "/api/positions", HTTP_AUTHORIZATION=f"Bearer {unknown_token}", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        ).status_code
        for n in range(AUTH_FAILURE_LIMIT + 2)
    ]

    assert answers == [401] * AUTH_FAILURE_LIMIT + [429, 429]


@pytest.mark.django_db
def test_varying_x_forwarded_for_does_not_dodge_the_anonymous_limit(api_client, redis_client, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "health": {"anonymous": (3, 60), "free": (3, 60)}}

    answers = [api_client.get("/api/health", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}") for n in range(5)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    assert answers[3].json()["error"]["code"] == "rate_limited"
    assert redis_client.keys("nija:rate:health:*") == [b"nija:rate:health:ip:127.0.0.1"]


@pytest.mark.django_db
def test_behind_one_proxy_each_forwarded_client_has_its_own_anonymous_limit(api_client, redis_client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "health": {"anonymous": (1, 60), "free": (1, 60)}}

    first, second = ("203.0.113.1", "203.0.113.2")
    answers = [api_client.get("/api/health", HTTP_X_FORWARDED_FOR=ip).status_code for ip in (first, second, first)]

    assert answers == [200, 200, 429]
