"""POST /api/risk/check-position as a bot sees it: every failing rule reported with its limit and value, the
approval threshold, what is recorded and reserved (and what is not: rejections, dry runs, legacy bodies,
reduce-only confirmations), idempotent retries, the fresh mark, edits of permissions and limits seen at once,
and the check's own rate limit."""

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from accounts.models import TokenKind, UserPermission
from accounts.services import user_permission_update
from risk.models import RiskEvent, RiskLimits
from risk.services.approval import position_approve
from risk.services.lifecycle import FillInput, position_cancel, position_fill, reservations_expire
from risk.services.trading_state import trading_halt
from tests.accounts.factories import OperatorFactory, issue_token
from tests.risk.api.test_bad_input import database_state
from tests.risk.conftest import bot_client, counter_drift, funded_account, operator_client
from trading.models import Position

CHECK_URL = "/api/risk/check-position"
IDEMPOTENCY_CONFLICT = {
    "error": {
        "code": "idempotency_conflict",
        "message": "This idempotency key was already used with a different request body.",
    }
}


def check(client: APIClient, account_id: int, **fields: object):
    body = {"account_id": account_id, "symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"}
    return client.post(CHECK_URL, json.dumps(body | fields), content_type="application/json")


def ok(response) -> dict:
    assert response.status_code == 200, response.json()
    return response.json()


def exposure_of(account) -> tuple[Decimal, int]:
    account.refresh_from_db()
    return account.exposure, account.position_count


@pytest.fixture
def big_portfolio(relaxed_rate_limits, redis_client):
    """Another account with 10,000,000 of equity, so portfolio and symbol ceilings stay far away."""
    return funded_account("10000000")


# ---------------------------------------------------------------------------------------------- decisions
@pytest.mark.django_db
def test_a_request_breaking_two_rules_reports_both_records_a_rejection_and_reserves_nothing(big_portfolio):
    account = funded_account("100000")
    client = bot_client(account)

    body = ok(check(client, account.pk, quantity="1", price="95000"))

    position = Position.objects.get(pk=body["position_id"])
    assert body == {
        "decision": "rejected",
        "allowed": False,
        "status": "rejected",
        "reasons": [
            {
                "code": "max_position_size",
                "message": "notional 95000.00000000 exceeds max position size 20000.00000000"
                " (0.200000 of account equity 100000.00000000)",
                "limit": "20000.00000000",
                "value": "95000.00000000",
            },
            {
                "code": "account_exposure",
                "message": "account exposure 95000.00000000 would exceed 90000.00000000"
                " (0.900000 of account equity 100000.00000000)",
                "limit": "90000.00000000",
                "value": "95000.00000000",
            },
        ],
        "position_id": position.pk,
        "expires_at": None,
        "notional": "95000.00000000",
        "metrics": {
            "account_equity": "100000.00000000",
            "account_exposure": "0.00000000",
            "account_exposure_pct": "0.00000000",
        },
    }
    stored = [reason | {"scope": "account"} for reason in body["reasons"]]  # the account's own figures
    assert (position.status, position.check_decision, position.reasons) == ("rejected", "rejected", stored)
    assert (position.notional, position.reservation_expires_at) == (Decimal("95000"), None)
    assert exposure_of(account) == (Decimal(0), 0)
    assert counter_drift() == []


@pytest.mark.django_db
def test_every_failing_rule_is_reported_in_the_tables_order(big_portfolio, django_capture_on_commit_callbacks):
    account = funded_account("100000", permission={"max_open_positions": 1})
    client = bot_client(account)
    assert ok(check(client, account.pk))["decision"] == "approved"  # 5000 held, 1 of 1 positions
    with django_capture_on_commit_callbacks(execute=True):  # the permission cache is refreshed on commit
        user_permission_update(
            permission=UserPermission.objects.get(user=account.user),
            actor=OperatorFactory(),
            reason="lock down",
            can_trade=False,
            allowed_symbols=["ETH-USD"],
        )

    body = ok(check(client, account.pk, quantity="1", price="95000"))

    assert body["decision"] == "rejected"
    assert body["reasons"] == [
        {"code": "permission_denied", "message": "the user may not trade", "limit": None, "value": None},
        {
            "code": "permission_denied",
            "message": "symbol BTC-USD is not among the user's allowed symbols",
            "limit": None,
            "value": "BTC-USD",
        },
        {
            "code": "max_position_size",
            "message": "notional 95000.00000000 exceeds max position size 20000.00000000"
            " (0.200000 of account equity 100000.00000000)",
            "limit": "20000.00000000",
            "value": "95000.00000000",
        },
        {
            "code": "max_open_positions",
            "message": "account holds 1 pending, approved or open positions, its limit is 1",
            "limit": 1,
            "value": 1,
        },
        {
            "code": "account_exposure",
            "message": "account exposure 100000.00000000 would exceed 90000.00000000"
            " (0.900000 of account equity 100000.00000000)",
            "limit": "90000.00000000",
            "value": "100000.00000000",
        },
    ]
    assert exposure_of(account) == (Decimal(5000), 1)
    assert counter_drift() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("quantity", "price", "decision", "ttl"),
    [
        pytest.param("0.5", "50000", "pending_approval", timedelta(minutes=15), id="at-threshold"),
        pytest.param("2", "20000", "pending_approval", timedelta(minutes=15), id="above-threshold"),
        pytest.param("1", "24999.99999999", "approved", timedelta(seconds=120), id="just-below"),
    ],
)
def test_the_approval_threshold_of_25000(big_portfolio, quantity, price, decision, ttl):
    account = funded_account("1000000")

    body = ok(check(bot_client(account), account.pk, quantity=quantity, price=price))

    position = Position.objects.get(pk=body["position_id"])
    notional = (Decimal(quantity) * Decimal(price)).quantize(Decimal("0.00000001"))
    assert (body["decision"], body["allowed"], body["reasons"]) == (decision, decision == "approved", [])
    assert body["notional"] == f"{notional:.8f}"
    assert position.status == decision
    assert position.reservation_expires_at == position.decided_at + ttl
    assert parse_datetime(body["expires_at"]) == position.reservation_expires_at
    assert exposure_of(account) == (notional, 1)  # pending and approved positions both hold their exposure
    assert body["metrics"]["account_exposure"] == f"{notional:.8f}"
    assert counter_drift() == []
    events = list(RiskEvent.objects.filter(instance=account).values_list("type", "severity", "message"))
    if decision == "pending_approval":
        assert events == [
            (
                "approval_requested",
                "warning",
                f"Position #{position.pk} (BTC-USD, notional {notional:.8f}) awaits approval.",
            )
        ]
    else:
        assert events == []


@pytest.mark.django_db
def test_json_numbers_keep_every_decimal_end_to_end(big_portfolio):
    """Raw JSON numbers are read as Decimal: 1234567890.12345678 as a float would lose its last digits."""
    account = funded_account("1000000")
    text = (
        f'{{"account_id": {account.pk}, "symbol": "BTC-USD", "side": "long",'
        ' "quantity": 0.00000001, "price": 1234567890.12345678}'
    )

    body = ok(bot_client(account).post(CHECK_URL, text, content_type="application/json"))

    position = Position.objects.get(pk=body["position_id"])
    assert position.requested_price == Decimal("1234567890.12345678")
    assert position.quantity == Decimal("0.00000001")
    assert body["notional"] == "12.34567891"  # 12.3456789012345678 rounded up to 8 decimals
    assert position.notional == Decimal("12.34567891")


# ---------------------------------------------------------------------------------------------- writes nothing
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("quantity", "decision", "reasons"),
    [("0.1", "approved", []), ("1.9", "rejected", ["max_position_size", "account_exposure"])],
)
def test_a_dry_run_decides_but_writes_nothing(big_portfolio, quantity, decision, reasons):
    account = funded_account("100000")
    client = bot_client(account)
    before = database_state()

    body = ok(check(client, account.pk, quantity=quantity, dry_run=True, client_order_id="dry-1"))

    assert (body["decision"], [r["code"] for r in body["reasons"]]) == (decision, reasons)
    assert (body["position_id"], body["expires_at"]) == (None, None)
    assert database_state() == before


@pytest.mark.django_db
def test_a_legacy_body_is_a_dry_run_of_that_notional_with_allowed_and_reason(big_portfolio):
    account = funded_account("100000", permission={"allowed_symbols": ["ETH-USD"]})  # symbol rules are skipped
    client = bot_client(account)
    before = database_state()

    allowed = ok(client.post(CHECK_URL, {"account_id": account.pk, "position_size": "5000"}, format="json"))
    refused = ok(client.post(CHECK_URL, {"account_id": account.pk, "position_size": "20000.00000001"}, format="json"))

    assert {key: allowed[key] for key in ("decision", "allowed", "reason", "reasons", "position_id", "notional")} == {
        "decision": "approved",
        "allowed": True,
        "reason": None,
        "reasons": [],
        "position_id": None,
        "notional": "5000.00000000",
    }
    message = (
        "notional 20000.00000001 exceeds max position size 20000.00000000 (0.200000 of account equity 100000.00000000)"
    )
    assert {key: refused[key] for key in ("decision", "allowed", "reason", "position_id")} == {
        "decision": "rejected",
        "allowed": False,
        "reason": message,
        "position_id": None,
    }
    assert refused["reasons"] == [
        {"code": "max_position_size", "message": message, "limit": "20000.00000000", "value": "20000.00000001"}
    ]
    assert database_state() == before


# ---------------------------------------------------------------------------------------------- idempotency
@pytest.mark.django_db
@pytest.mark.parametrize(("quantity", "decision"), [("0.1", "approved"), ("1.9", "rejected")])
def test_a_retry_with_the_same_client_order_id_and_body_replays_the_original_answer(big_portfolio, quantity, decision):
    account = funded_account("100000")
    client = bot_client(account)
    first = ok(check(client, account.pk, quantity=quantity, client_order_id="order-1"))
    after_first = database_state()

    again = ok(check(client, account.pk, quantity=quantity, client_order_id="order-1"))
    respelled = ok(check(client, account.pk, quantity=f"{quantity}0000", price="50000.0", client_order_id="order-1"))

    assert first["decision"] == decision
    for replay in (again, respelled):
        assert replay["replayed"] is True
        assert {key: replay[key] for key in ("decision", "allowed", "reasons", "position_id", "expires_at")} == {
            key: first[key] for key in ("decision", "allowed", "reasons", "position_id", "expires_at")
        }
        assert replay["notional"] == first["notional"]
    assert "replayed" not in first
    assert database_state() == after_first
    assert Position.objects.filter(instance=account, client_order_id="order-1").count() == 1
    assert counter_drift() == []


def _cancelled(position: Position, operator) -> None:
    position_cancel(position_id=position.pk, instance_id=None, now=timezone.now())


def _halted(position: Position, operator) -> None:
    trading_halt(instance_id=position.instance_id, mode="halted", reason="drill", actor=operator, now=timezone.now())


def _expired(position: Position, operator) -> None:
    reservations_expire(now=timezone.now() + timedelta(minutes=16))


def _deadline_passed_not_swept(position: Position, operator) -> None:
    Position.objects.filter(pk=position.pk).update(reservation_expires_at=timezone.now() - timedelta(seconds=1))


def _approved(position: Position, operator) -> None:
    position_approve(position_id=position.pk, actor=operator, reason="ok", now=timezone.now())


def _filled(quantity: str):
    def fill(position: Position, operator) -> None:
        position_fill(
            position_id=position.pk,
            instance_id=None,
            fill=FillInput(exchange_order_id="ex-1", quantity=Decimal(quantity), price=Decimal(50000)),
            now=timezone.now(),
        )

    return fill


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("quantity", "since", "decision", "status", "allowed"),
    [
        ("0.1", None, "approved", "approved", True),
        ("0.1", _cancelled, "approved", "cancelled", False),
        ("0.1", _halted, "approved", "cancelled", False),
        ("0.1", _expired, "approved", "expired", False),
        ("0.1", _deadline_passed_not_swept, "approved", "approved", False),
        ("0.1", _filled("0.04"), "approved", "open", True),
        ("0.1", _filled("0.1"), "approved", "open", False),
        ("0.6", None, "pending_approval", "pending_approval", False),
        ("0.6", _approved, "pending_approval", "approved", True),
        ("0.6", _expired, "pending_approval", "expired", False),
    ],
    ids=[
        "approved",
        "cancelled",
        "halted",
        "expired",
        "deadline-passed",
        "partly-filled",
        "filled",
        "pending",
        "pending-approved-since",
        "pending-expired",
    ],
)
def test_a_replay_answers_the_original_decision_the_status_now_and_allowed_only_while_the_approval_holds(
    big_portfolio, quantity, since, decision, status, allowed
):
    """A bot that lost the first answer must not open a position the desk has taken back since."""
    account = funded_account("200000")
    client = bot_client(account)
    first = ok(check(client, account.pk, quantity=quantity, client_order_id="order-1"))
    assert first["decision"] == decision
    if since is not None:
        since(Position.objects.get(pk=first["position_id"]), OperatorFactory())

    replay = ok(check(client, account.pk, quantity=quantity, client_order_id="order-1"))

    assert (replay["replayed"], replay["allowed"]) == (True, allowed)
    assert (replay["decision"], replay["status"]) == (decision, status)
    assert first["status"] == decision
    assert replay["position_id"] == first["position_id"]
    assert Position.objects.filter(instance=account).count() == 1
    assert counter_drift() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [{"quantity": "0.2"}, {"price": "50001"}, {"side": "short"}, {"symbol": "ETH-USD"}],
    ids=["quantity", "price", "side", "symbol"],
)
def test_the_same_client_order_id_with_a_different_body_is_409_and_writes_nothing(big_portfolio, changes):
    account = funded_account("100000")
    client = bot_client(account)
    ok(check(client, account.pk, client_order_id="order-1"))
    before = database_state()

    response = check(client, account.pk, client_order_id="order-1", **changes)

    assert response.status_code == 409
    assert response.json() == IDEMPOTENCY_CONFLICT
    assert database_state() == before


@pytest.mark.django_db
def test_client_order_ids_are_per_account(big_portfolio):
    first, second = funded_account("100000"), funded_account("100000")

    one = ok(check(bot_client(first), first.pk, client_order_id="shared"))
    two = ok(check(bot_client(second), second.pk, quantity="0.2", client_order_id="shared"))

    assert one["position_id"] != two["position_id"]
    assert "replayed" not in two
    assert (exposure_of(first), exposure_of(second)) == ((Decimal(5000), 1), (Decimal(10000), 1))


# ---------------------------------------------------------------------------------------------- reduce-only
@pytest.fixture
def open_position(big_portfolio):
    """A bot's open position: 0.1 BTC-USD filled at 50000."""
    account = funded_account("100000")
    client = bot_client(account)
    position_id = ok(check(client, account.pk))["position_id"]
    fill = {"exchange_order_id": "ex-1", "quantity": "0.1", "price": "50000"}
    assert client.post(f"/api/positions/{position_id}/fill", fill, format="json").status_code == 200
    return client, account, Position.objects.get(pk=position_id)


def reduce(client: APIClient, position: Position, quantity: str = "0.05"):
    return check(
        client,
        position.instance_id,
        side="short",
        quantity=quantity,
        price="51000",
        reduce_only=True,
        position_id=position.pk,
    )


HALTED = {"code": "trading_halted", "message": "account trading is halted", "limit": None, "value": "halted"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("scope", "mode", "decision", "reasons"),
    [
        pytest.param(None, None, "approved", [], id="active"),
        pytest.param("account", "reducing", "approved", [], id="account-reducing"),
        pytest.param("portfolio", "reducing", "approved", [], id="portfolio-reducing"),
        pytest.param("account", "halted", "rejected", [HALTED], id="account-halted"),
        pytest.param(
            "portfolio",
            "halted",
            "rejected",
            # a portfolio rule: no figure for a bot
            [
                {
                    "code": "trading_halted",
                    "message": "portfolio trading is halted or reducing",
                    "limit": None,
                    "value": None,
                }
            ],
            id="portfolio-halted",
        ),
    ],
)
def test_a_reduce_only_check_is_a_confirmation_that_writes_nothing(open_position, scope, mode, decision, reasons):
    client, account, position = open_position
    if scope is not None:
        trading_halt(
            instance_id=account.pk if scope == "account" else None,
            mode=mode,
            reason="drill",
            actor=OperatorFactory(),
            now=timezone.now(),
        )
    before = database_state()

    body = ok(reduce(client, position))

    assert body == {
        "decision": decision,
        "allowed": decision == "approved",
        "status": "open",  # the position it would reduce, as it is
        "reasons": reasons,
        "position_id": position.pk,
        "expires_at": None,
        "notional": "0.00000000",
        "metrics": {},
    }
    assert database_state() == before


@pytest.mark.django_db
def test_a_reduce_only_check_beyond_the_open_quantity_is_rejected(open_position):
    client, _, position = open_position
    before = database_state()

    body = ok(reduce(client, position, quantity="0.10000001"))

    assert (body["decision"], body["allowed"]) == ("rejected", False)
    assert body["reasons"] == [
        {
            "code": "reduce_exceeds_position",
            "message": "quantity 0.10000001 exceeds the position's open quantity 0.10000000",
            "limit": "0.10000000",
            "value": "0.10000001",
        }
    ]
    assert database_state() == before


@pytest.mark.django_db
def test_an_opening_check_in_reducing_is_rejected_and_holds_nothing(open_position):
    client, account, _ = open_position
    trading_halt(instance_id=account.pk, mode="reducing", reason="drill", actor=OperatorFactory(), now=timezone.now())
    held = exposure_of(account)

    body = ok(check(client, account.pk))

    assert body["decision"] == "rejected"
    assert body["reasons"] == [
        {
            "code": "trading_halted",
            "message": "account is reducing: only reduce-only requests are accepted",
            "limit": None,
            "value": "reducing",
        }
    ]
    assert exposure_of(account) == held
    assert counter_drift() == []


# ---------------------------------------------------------------------------------------------- marks
@pytest.mark.django_db
@pytest.mark.parametrize("writer", ["feed", "operator"])
def test_a_fresh_mark_above_the_price_sets_the_notional(big_portfolio, writer):
    if writer == "feed":
        feeder = APIClient()
        feeder.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(TokenKind.FEED)}")
    else:
        feeder, _ = operator_client("risk_admin")  # staff alone may not move the mark
    account = funded_account("100000")
    client = bot_client(account)

    put = feeder.put("/api/market/BTC-USD", {"price": "60000"}, format="json")
    below_mark = ok(check(client, account.pk, price="50000"))
    above_mark = ok(check(client, account.pk, price="70000"))

    assert put.status_code == 200, put.json()
    assert below_mark["notional"] == "6000.00000000"  # 0.1 x max(50000, mark 60000)
    assert above_mark["notional"] == "7000.00000000"  # 0.1 x max(70000, mark 60000)
    assert Position.objects.get(pk=below_mark["position_id"]).notional == Decimal("6000")
    assert Position.objects.get(pk=below_mark["position_id"]).requested_price == Decimal("50000")
    assert exposure_of(account) == (Decimal("13000"), 2)


@pytest.mark.django_db
def test_a_mark_of_another_symbol_is_not_used(big_portfolio):
    feeder = APIClient()
    feeder.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(TokenKind.FEED)}")
    account = funded_account("100000")
    assert feeder.put("/api/market/ETH-USD", {"price": "60000"}, format="json").status_code == 200

    body = ok(check(bot_client(account), account.pk, price="50000"))

    assert body["notional"] == "5000.00000000"


# ---------------------------------------------------------------------------------------------- edits seen at once
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("change", "code", "limit", "value"),
    [
        ({"max_position_size": Decimal("4000")}, "max_position_size", Decimal("4000"), "5000.00000000"),
        ({"allowed_symbols": ["ETH-USD"]}, "permission_denied", None, "BTC-USD"),
        ({"can_trade": False}, "permission_denied", None, None),
    ],
    ids=["max_position_size", "allowed_symbols", "can_trade"],
)
def test_a_permission_edit_is_seen_by_the_next_check(relaxed_rate_limits, redis_client, change, code, limit, value):
    """A transactional test: the edit commits, so the permission cache is refreshed exactly as in production."""
    funded_account("10000000")
    account = funded_account("100000")
    client = bot_client(account)
    assert ok(check(client, account.pk))["decision"] == "approved"  # the permission is cached now

    user_permission_update(
        permission=UserPermission.objects.get(user=account.user), actor=OperatorFactory(), reason="tighten", **change
    )
    body = ok(check(client, account.pk))

    assert body["decision"] == "rejected"
    assert [(r["code"], r["value"]) for r in body["reasons"]] == [(code, value)]
    reported = body["reasons"][0]["limit"]
    assert (Decimal(reported) if reported is not None else None) == limit


@pytest.mark.django_db(transaction=True)
def test_a_limit_from_an_edited_permission_is_reported_on_the_8_decimal_grid(relaxed_rate_limits, redis_client):
    account = funded_account("100000")
    client = bot_client(account)
    ok(check(client, account.pk))

    user_permission_update(
        permission=UserPermission.objects.get(user=account.user),
        actor=OperatorFactory(),
        reason="tighten",
        max_position_size=Decimal("4000"),
    )
    body = ok(check(client, account.pk))

    assert body["reasons"] == [
        {
            "code": "max_position_size",
            "message": "notional 5000.00000000 exceeds max position size 4000.00000000",
            "limit": "4000.00000000",
            "value": "5000.00000000",
        }
    ]


@pytest.mark.django_db
def test_a_limits_override_is_seen_by_the_next_check(big_portfolio):
    account = funded_account("100000")
    client = bot_client(account)
    assert ok(check(client, account.pk))["decision"] == "approved"

    RiskLimits.objects.create(instance=account, max_position_pct=Decimal("0.01"))
    body = ok(check(client, account.pk))

    assert body["reasons"] == [
        {
            "code": "max_position_size",
            "message": "notional 5000.00000000 exceeds max position size 1000.00000000"
            " (0.010000 of account equity 100000.00000000)",
            "limit": "1000.00000000",
            "value": "5000.00000000",
        }
    ]


# ---------------------------------------------------------------------------------------------- rate limit
@pytest.mark.django_db
def test_the_check_has_its_own_rate_limit_answering_429_with_headers(settings, redis_client):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "risk_check": {"free": (3, 60), "pro": (3, 60)}}
    funded_account("10000000")
    account = funded_account("100000")
    client = bot_client(account)
    started = time.monotonic()

    allowed = [check(client, account.pk, client_order_id=f"o-{n}") for n in range(3)]
    before = database_state()
    refused = check(client, account.pk, client_order_id="o-3")
    elapsed = time.monotonic() - started

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [(r["X-RateLimit-Limit"], r["X-RateLimit-Remaining"]) for r in allowed] == [
        ("3", "2"),
        ("3", "1"),
        ("3", "0"),
    ]
    assert refused.status_code == 429
    retry_after = int(refused["Retry-After"])
    assert 60 - int(elapsed) - 1 <= retry_after <= 60
    assert refused.json() == {
        "error": {
            "code": "rate_limited",
            "message": f"Request was throttled. Expected available in {retry_after} seconds.",
        }
    }
    assert (refused["X-RateLimit-Limit"], refused["X-RateLimit-Remaining"]) == ("3", "0")
    assert database_state() == before
    # Other scopes and other bots are counted apart.
    assert client.post(f"/api/accounts/{account.pk}/metrics", {"equity": "100000"}, format="json").status_code == 200
    other = funded_account("100000")
    assert check(bot_client(other), other.pk).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_every_decision_is_logged_with_its_correlation_id(relaxed_rate_limits, capfd):
    account = funded_account("100000")
    client = bot_client(account)
    body = {"account_id": account.pk, "symbol": "ETH-USD", "side": "short", "quantity": "2", "price": "3000"}

    response = client.post("/api/risk/check-position", body, format="json", HTTP_X_REQUEST_ID="check-log-1")

    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    logged = [line for line in lines if line.get("request_id") == "check-log-1"]
    assert [line["event"] for line in logged] == ["request_finished"]  # one line a request, the decision on it
    assert [(line["request_id"], line["position_id"], line["decision"], line["notional"]) for line in logged] == [
        ("check-log-1", response.json()["position_id"], "approved", "6000.00000000")
    ]
    assert logged[0]["account_id"] == account.pk
    assert logged[0]["reasons"] == []
