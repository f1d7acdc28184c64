"""The alerts API with real tokens: who may read and write (operators read rules and events, risk admins write
and alone see channels; bots 403, nobody 401), strict input (400 JSON, nothing written), secrets write-only,
every change audited, and the OpenAPI schema."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEntry, TokenKind
from monitoring.alerts.engine import Figures
from monitoring.alerts.models import AlertEvent, AlertRule, NotificationChannel
from monitoring.alerts.services.evaluation import alerts_evaluate
from tests.accounts.factories import TradingInstanceFactory, issue_token
from tests.monitoring.alerts.conftest import webhook_channel
from tests.risk.conftest import operator_client

pytestmark = pytest.mark.django_db

RULES, CHANNELS, EVENTS = "/api/alerts/rules", "/api/alerts/channels", "/api/alerts/events"


def rule_body(**changes: object) -> dict:
    return {
        "name": "drawdown",
        "scope": "every_account",
        "figure": "drawdown_pct",
        "comparator": "gte",
        "threshold": "0.10",
        "for_seconds": 60,
        "cooldown_seconds": 900,
        "severity": "warning",
    } | changes


def send(client: APIClient, method: str, path: str, body: object = None):
    data = body if isinstance(body, str) else json.dumps(body) if body is not None else None
    return getattr(client, method)(path, data, content_type="application/json")


@pytest.fixture
def admin_client() -> APIClient:
    return operator_client("risk_admin")[0]


@pytest.fixture
def viewer_client() -> APIClient:
    return operator_client("viewer")[0]


def bot() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(TokenKind.BOT)}")
    return client


def writes() -> tuple[int, int, int]:
    return AlertRule.objects.count(), NotificationChannel.objects.count(), AuditEntry.objects.count()


# ---------------------------------------------------------------------------------------------- authorization
def test_authorization_matrix(admin_client, viewer_client, settings):
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True
    channel, _ = webhook_channel("http://127.0.0.1:9/hook")
    rule = send(admin_client, "post", RULES, rule_body()).json()
    anonymous, bot_client = APIClient(), bot()
    cases = [
        ("get", RULES, None, {"admin": 200, "viewer": 200}),
        ("get", f"{RULES}/{rule['id']}", None, {"admin": 200, "viewer": 200}),
        ("get", EVENTS, None, {"admin": 200, "viewer": 200}),
        ("post", RULES, rule_body(name="second"), {"admin": 201, "viewer": 403}),
        ("patch", f"{RULES}/{rule['id']}", {"enabled": False}, {"admin": 200, "viewer": 403}),
        ("get", CHANNELS, None, {"admin": 200, "viewer": 403}),
        ("get", f"{CHANNELS}/{channel.pk}", None, {"admin": 200, "viewer": 403}),
        ("post", CHANNELS, {"name": "x", "kind": "webhook", "url": "https://example.com/h"}, {"admin": 201}),
        ("patch", f"{CHANNELS}/{channel.pk}", {"enabled": False}, {"admin": 200, "viewer": 403}),
        ("delete", f"{RULES}/{rule['id']}", None, {"admin": 204, "viewer": 403}),
    ]
    for method, path, body, expected in cases:
        assert send(anonymous, method, path, body).status_code == 401, (method, path)
        assert send(bot_client, method, path, body).status_code == 403, (method, path)
        if "viewer" in expected:
            assert send(viewer_client, method, path, body).status_code == expected["viewer"], (method, path)
        assert send(admin_client, method, path, body).status_code == expected["admin"], (method, path)


@pytest.mark.parametrize("path", [CHANNELS, f"{CHANNELS}/{{channel}}"])
def test_head_needs_what_get_needs(viewer_client, admin_client, settings, path):
    """Django answers HEAD with the GET handler: the channel reads stay risk admins'."""
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True
    channel, _ = webhook_channel("http://127.0.0.1:9/hook")
    path = path.format(channel=channel.pk)

    assert viewer_client.head(path).status_code == 403
    assert admin_client.head(path).status_code == 200


def test_a_refused_write_writes_nothing(viewer_client):
    before = writes()

    response = send(viewer_client, "post", RULES, rule_body())

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert writes() == before


# ---------------------------------------------------------------------------------------------- rules
def test_create_read_update_delete_a_rule_audited(admin_client, viewer_client):
    account = TradingInstanceFactory()
    created = send(admin_client, "post", RULES, rule_body(scope="account", account_id=account.pk))
    assert created.status_code == 201, created.json()
    rule = created.json()
    assert {key: rule[key] for key in ("scope", "account_id", "threshold", "states", "firing_count")} == {
        "scope": "account",
        "account_id": account.pk,
        "threshold": "0.10000000",
        "states": [],
        "firing_count": 0,
    }

    listed = send(viewer_client, "get", RULES).json()
    assert (listed["count"], listed["results"][0]["name"]) == (1, "drawdown")

    patched = send(admin_client, "patch", f"{RULES}/{rule['id']}", {"threshold": "0.15", "severity": "critical"})
    assert (patched.json()["threshold"], patched.json()["severity"]) == ("0.15000000", "critical")
    assert send(admin_client, "delete", f"{RULES}/{rule['id']}").status_code == 204
    assert send(viewer_client, "get", f"{RULES}/{rule['id']}").status_code == 404

    audit = list(AuditEntry.objects.filter(target_type="monitoring.alertrule").order_by("id"))
    assert [entry.action for entry in audit] == ["alert_rule.create", "alert_rule.update", "alert_rule.delete"]
    assert audit[1].before == {"threshold": "0.10000000", "severity": "warning"}
    assert audit[1].after == {"threshold": "0.15000000", "severity": "critical"}
    assert audit[0].actor is not None
    assert audit[0].reason.startswith("through the API")


def bad_rule_cases(account_id: int) -> list[tuple[dict, str]]:
    return [
        (rule_body(figure="temperature"), "figure"),
        (rule_body(scope="galaxy"), "scope"),
        (rule_body(comparator="approx"), "comparator"),
        (rule_body(for_seconds=-1), "for_seconds"),
        (rule_body(cooldown_seconds=-5), "cooldown_seconds"),
        (rule_body(for_seconds=10**9), "for_seconds"),
        (rule_body(for_seconds="soon"), "for_seconds"),
        (rule_body(for_seconds=1.5), "for_seconds"),
        (rule_body(threshold="NaN"), "threshold"),
        (rule_body(threshold="Infinity"), "threshold"),
        (rule_body(threshold="1.5"), "threshold"),  # drawdown is a fraction: at most 1
        (rule_body(threshold="-0.1"), "threshold"),
        (rule_body(threshold="0.123456789"), "threshold"),
        (rule_body(threshold="1e30"), "threshold"),
        (rule_body(threshold=True), "threshold"),
        (rule_body(threshold="1_0"), "threshold"),
        (rule_body(severity="apocalyptic"), "severity"),
        (rule_body(scope="account"), "account_id"),  # an account rule names its account
        (rule_body(account_id=account_id), "account_id"),  # only an account rule names one
        (rule_body(scope="account", account_id=10**12), "account_id"),  # unknown
        (rule_body(scope="portfolio", figure="heartbeat_age_s", threshold="60"), "figure"),
        (rule_body(channel_ids=[999999]), "channel_ids"),
        (rule_body(channel_ids="1"), "channel_ids"),
        (rule_body(name="x" * 101), "name"),
        (rule_body(exposure="1"), "exposure"),  # unknown field
        ({k: v for k, v in rule_body().items() if k != "figure"}, "figure"),
    ]


def test_bad_rules_are_400_with_the_field_and_write_nothing(admin_client):
    account = TradingInstanceFactory()
    before = writes()
    for body, field in bad_rule_cases(account.pk):
        response = send(admin_client, "post", RULES, body)
        assert response.status_code == 400, (body, response.json())
        assert field in response.json()["error"]["fields"], (body, response.json())
    assert writes() == before


def test_malformed_json_nan_literal_and_non_objects_are_400(admin_client):
    for raw in ['{"threshold": NaN}', "{not json", "[]", '"rule"']:
        response = send(admin_client, "post", RULES, raw)
        assert response.status_code == 400, raw
        assert response.json()["error"]["code"] in ("malformed_request", "validation_error")
    assert AlertRule.objects.count() == 0


def test_a_duplicate_name_is_400(admin_client):
    send(admin_client, "post", RULES, rule_body())
    response = send(admin_client, "post", RULES, rule_body())
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"name": ["Another rule has this name."]}


def test_a_bad_patch_changes_nothing(admin_client):
    rule = send(admin_client, "post", RULES, rule_body()).json()
    for body in ({"threshold": "2"}, {"for_seconds": -1}, {"figure": "nope"}, {"id": 5}):
        assert send(admin_client, "patch", f"{RULES}/{rule['id']}", body).status_code == 400, body
    stored = AlertRule.objects.get()
    assert (stored.threshold, stored.for_seconds, stored.figure) == (Decimal("0.1"), 60, "drawdown_pct")
    assert send(admin_client, "patch", f"{RULES}/999999", {"enabled": False}).status_code == 404


def test_unknown_query_parameters_are_400(viewer_client):
    response = send(viewer_client, "get", f"{EVENTS}?rules=1")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"rules": ["Unknown parameter."]}
    assert send(viewer_client, "get", f"{EVENTS}?state=burning").status_code == 400
    assert send(viewer_client, "get", f"{EVENTS}?since=yesterday").status_code == 400


# ---------------------------------------------------------------------------------------------- channels
def test_a_generated_secret_is_shown_once_and_never_again(admin_client):
    created = send(admin_client, "post", CHANNELS, {"name": "w", "kind": "webhook", "url": "https://example.com/h"})
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")

    channel = NotificationChannel.objects.get()
    assert channel.secret == secret  # decrypted by the field
    for response in (send(admin_client, "get", CHANNELS), send(admin_client, "get", f"{CHANNELS}/{channel.pk}")):
        assert secret not in response.content.decode()
        assert "secret" not in json.dumps(response.json())
    entries = AuditEntry.objects.filter(target_type="monitoring.notificationchannel")
    assert secret not in json.dumps(list(entries.values("before", "after")))


def test_secrets_and_apprise_urls_are_encrypted_at_rest(admin_client):
    from django.db import connection

    given = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="
    created = send(
        admin_client,
        "post",
        CHANNELS,
        {"name": "w", "kind": "webhook", "url": "https://example.com/h", "secret": given},
    )
    assert "secret" not in created.json()  # a secret the caller gave is not echoed back
    tgram = "tgram://123456789:AAHsecretbottoken/-100123"
    response = send(admin_client, "post", CHANNELS, {"name": "t", "kind": "apprise", "url": tgram})
    assert response.json()["target"] == "tgram:// (Telegram)"

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret, apprise_url FROM monitoring_notificationchannel ORDER BY id")
        stored = cursor.fetchall()
    assert all(
        value is None or (value.startswith("gAAAA") and "secret" not in value) for row in stored for value in row
    )
    assert "AAHsecretbottoken" not in send(admin_client, "get", CHANNELS).content.decode()


def test_rotating_a_secret_shows_the_new_one_once(admin_client):
    created = send(admin_client, "post", CHANNELS, {"name": "w", "kind": "webhook", "url": "https://example.com/h"})
    channel_id = created.json()["id"]

    rotated = send(admin_client, "patch", f"{CHANNELS}/{channel_id}", {"rotate_secret": True}).json()

    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created.json()["secret"]
    assert NotificationChannel.objects.get().secret == rotated["secret"]
    entry = AuditEntry.objects.filter(action="alert_channel.update").get()
    assert entry.after == {"secret": "changed"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "w", "kind": "webhook", "url": "ftp://example.com/h"}, "url"),
        ({"name": "w", "kind": "webhook", "url": "https://user:pw@example.com/h"}, "url"),
        ({"name": "w", "kind": "webhook", "url": "http://127.0.0.1:8000/h"}, "url"),
        ({"name": "w", "kind": "webhook", "url": "http://[::1]/h"}, "url"),
        ({"name": "w", "kind": "webhook", "url": "http://169.254.169.254/latest"}, "url"),
        ({"name": "w", "kind": "webhook", "url": "http://localhost/h"}, "url"),
        ({"name": "w", "kind": "webhook", "url": "https://example.com:99999/h"}, "url"),
        ({"name": "w", "kind": "webhook", "url": "https://example.com/a b"}, "url"),  # no request line can carry it
        ({"name": "w", "kind": "webhook", "url": "https://exa mple.com/h"}, "url"),
        ({"name": "w", "kind": "webhook", "url": "https://example.com/\x7f"}, "url"),
        ({"name": "w", "kind": "webhook", "url": "https://example.com/h", "secret": "hunter2"}, "secret"),
        ({"name": "w", "kind": "webhook", "url": "https://example.com/h", "secret": "whsec_c2hvcnQ="}, "secret"),
        ({"name": "a", "kind": "apprise", "url": "nothing://at-all"}, "url"),
        ({"name": "a", "kind": "apprise", "url": "json://10.0.0.5/hook"}, "url"),
        ({"name": "a", "kind": "apprise", "url": "tgram://1:AAH/2", "secret": "whsec_x"}, "secret"),
        ({"name": "w", "kind": "pigeon", "url": "https://example.com/h"}, "kind"),
        ({"name": "w", "kind": "webhook", "url": "https://example.com/" + "a" * 2000}, "url"),
        ({"name": "w", "kind": "webhook"}, "url"),
    ],
)
def test_bad_channels_are_400_and_write_nothing(admin_client, body, field):
    before = writes()
    response = send(admin_client, "post", CHANNELS, body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert writes() == before


def test_the_test_endpoint_reports_a_refused_private_target(admin_client, settings):
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True
    channel, _ = webhook_channel("http://localhost:9/hook")
    settings.ALERT_ALLOW_PRIVATE_TARGETS = False

    response = send(admin_client, "post", f"{CHANNELS}/{channel.pk}/test")

    assert response.status_code == 200
    body = response.json()
    assert (body["delivered"], body["outcome"], body["response_code"]) == (False, "refused", None)
    assert send(admin_client, "post", f"{CHANNELS}/999999/test").status_code == 404


# ---------------------------------------------------------------------------------------------- events
def test_events_newest_first_filtered_by_rule_state_and_since(admin_client, viewer_client):
    account = TradingInstanceFactory()
    rule = send(admin_client, "post", RULES, rule_body(for_seconds=0, cooldown_seconds=0)).json()
    other = send(admin_client, "post", RULES, rule_body(name="other", for_seconds=0, threshold="0.5")).json()
    moments = [datetime(2026, 1, 5, 12, minute, tzinfo=UTC) for minute in (0, 1, 2)]
    for moment, value in zip(moments, ("0.2", "0.01", "0.7"), strict=True):
        alerts_evaluate(figures=Figures(accounts={"drawdown_pct": {account.pk: Decimal(value)}}), now=moment)

    everything = send(viewer_client, "get", EVENTS).json()["results"]
    assert [e["occurred_at"][11:16] for e in everything] == ["12:02", "12:02", "12:01", "12:00"]
    assert {(e["rule_name"], e["state"]) for e in everything[:2]} == {("drawdown", "firing"), ("other", "firing")}
    assert [(e["rule_name"], e["state"]) for e in everything[2:]] == [("drawdown", "resolved"), ("drawdown", "firing")]
    by_rule = send(viewer_client, "get", f"{EVENTS}?rule={rule['id']}&state=firing").json()["results"]
    assert [e["occurred_at"] for e in by_rule] == ["2026-01-05T12:02:00Z", "2026-01-05T12:00:00Z"]
    since = send(viewer_client, "get", f"{EVENTS}?since=2026-01-05T12:01:00Z").json()
    assert since["count"] == 3
    send(admin_client, "delete", f"{RULES}/{other['id']}")
    kept = send(viewer_client, "get", f"{EVENTS}?rule={other['id']}").json()
    assert kept["results"][0]["value"] == "0.70000000"  # history outlives its rule
    assert AlertEvent.objects.count() == 4


# ---------------------------------------------------------------------------------------------- schema
def test_the_schema_documents_every_alert_path(viewer_client):
    schema = viewer_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/alerts/rules",
        "/api/alerts/rules/{rule_id}",
        "/api/alerts/channels",
        "/api/alerts/channels/{channel_id}",
        "/api/alerts/channels/{channel_id}/test",
        "/api/alerts/events",
    ):
        assert path in paths
    post = paths["/api/alerts/rules"]["post"]
    assert "AccountDrawdown" in post["requestBody"]["content"]["application/json"]["examples"]
    channel_input = schema["components"]["schemas"]["ChannelInput"]
    assert channel_input["properties"]["secret"]["writeOnly"] is True
