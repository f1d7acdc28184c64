"""Sending without a database: the address check, Standard Webhooks signatures, how answers are classified, and
the retry schedule (computed, never slept through)."""

import random
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from monitoring.alerts import transport
from monitoring.alerts.transport import Outcome
from tests.monitoring.alerts.receiver import Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBvZiAzMiBieXQ="


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # shared address space
        ("0.0.0.0", False),  # noqa: S104 - an address under test
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:8.8.8.8", True),
        ("224.0.0.1", False),
        # IPv4 addresses carried inside IPv6 ones reach the IPv4 address they carry through a translator:
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 (RFC 6052) of 169.254.169.254
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::a00:1", False),  # the local-use NAT64 prefix (RFC 8215): whatever it maps to is local
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1 (deprecated)
        ("::ffff:0:7f00:1", False),  # IPv4-translated 127.0.0.1 (SIIT)
        ("fec0::1", False),  # site-local (deprecated, still routed inside some networks)
    ],
)
def test_is_public_address(address, public):
    assert transport.is_public_address(address) is public


def test_resolve_target_refuses_a_name_resolving_to_loopback():
    with pytest.raises(transport.TargetRefused, match=r"localhost resolves to 127\.0\.0\.1"):
        transport.resolve_target("localhost", 80, allow_private=False)
    assert transport.resolve_target("localhost", 80, allow_private=True) == "127.0.0.1"


def test_the_signature_verifies_with_the_secret_and_not_with_another():
    now = datetime.now(UTC)
    body = transport.message_body({"type": "alert.firing", "data": {"value": "0.12"}})
    headers = {
        "webhook-id": "nija_alert_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": transport.sign(secret=SECRET, message_id="nija_alert_1", timestamp=now, body=body),
    }

    assert Webhook(SECRET).verify(body, headers) == {"type": "alert.firing", "data": {"value": "0.12"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"0.12", b"0.13"), headers)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (301, Outcome.REJECTED),
        (400, Outcome.REJECTED),
        (401, Outcome.REJECTED),
        (404, Outcome.REJECTED),
        (408, Outcome.RETRY),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_classify(status, outcome):
    assert transport.classify(status, {}).outcome == outcome


def test_retry_after_in_seconds_or_as_a_date():
    assert transport.classify(429, {"Retry-After": "120"}).retry_after == 120.0
    assert transport.retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert transport.retry_after_seconds("soon") is None
    # Delta-seconds are ASCII digits: other Unicode digits are unreadable, never an error or another number.
    assert transport.retry_after_seconds("\u00b2") is None
    assert transport.retry_after_seconds("\u0661\u0662") is None


def test_the_retry_schedule_doubles_up_to_its_cap_with_jitter_inside_the_window():
    windows = [transport.retry_window(attempt, base=10, cap=600) for attempt in range(1, 9)]
    assert windows == [(5, 10), (10, 20), (20, 40), (40, 80), (80, 160), (160, 320), (300, 600), (300, 600)]
    rng = random.Random(7)
    for attempt, (low, high) in enumerate(windows, start=1):
        delays = [transport.retry_delay(attempt, base=10, cap=600, rng=rng) for _ in range(200)]
        assert all(low <= delay <= high for delay in delays)
        assert max(delays) - min(delays) > (high - low) / 2  # jittered, not one value


def test_webhook_post_sends_the_signed_body_to_the_checked_address():
    now = datetime.now(UTC)
    body = transport.message_body({"type": "alert.test"})
    with Receiver() as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost")
        result = transport.webhook_post(
            url=url, secret=SECRET, message_id="m1", body=body, now=now, timeout=2, allow_private=True
        )

    assert (result.outcome, result.status_code) == (Outcome.DELIVERED, 200)
    [request] = receiver.requests
    assert request.path == "/hooks/nija?source=test"
    assert request.headers["Host"] == url.split("/")[2]  # the name, though the connection went to the address
    assert request.body == body
    assert Webhook(SECRET).verify(request.body, request.headers) == {"type": "alert.test"}


def test_webhook_post_to_a_private_target_is_refused_without_connecting():
    with Receiver() as receiver:
        result = transport.webhook_post(
            url=receiver.url,
            secret=SECRET,
            message_id="m1",
            body=b"{}",
            now=datetime.now(UTC),
            timeout=2,
            allow_private=False,
        )

    assert result.outcome == Outcome.REFUSED
    assert "127.0.0.1" in result.error
    assert receiver.requests == []


def test_a_closed_port_is_a_retryable_failure():
    with Receiver() as receiver:
        url = receiver.url
    result = transport.webhook_post(
        url=url, secret=SECRET, message_id="m1", body=b"{}", now=datetime.now(UTC), timeout=1, allow_private=True
    )
    assert result.outcome == Outcome.RETRY
    assert result.status_code is None
