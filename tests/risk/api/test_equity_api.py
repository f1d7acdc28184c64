"""Held equity increases and transfers over HTTP: the 202 `equity_increase_held` answer, operator confirmation
(`POST /api/accounts/{id}/equity/confirm`) and transfers (`POST /api/accounts/{id}/transfers`), who may call them,
and bad input that writes nothing."""

import pytest

from accounts.models import AuditEntry
from risk.models import EquityHold, EquityTransfer, Portfolio, RiskEvent
from tests.risk.conftest import bot_client, equity_drift, funded_account, operator_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark, token or rate-limit key from another test."""


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def written() -> tuple:
    """Everything a refused call must leave as it was."""
    return (
        list(Portfolio.objects.values()),
        list(EquityHold.objects.values()),
        list(EquityTransfer.objects.values()),
        AuditEntry.objects.count(),
        RiskEvent.objects.count(),
    )


def test_a_held_report_answers_202_equity_increase_held_with_the_accepted_figures():
    account = funded_account("100000")

    response = bot_client(account).post(f"/api/accounts/{account.pk}/metrics", {"equity": "150000.01"}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert (body["code"], body["held_equity"], body["equity"], body["peak_equity"]) == (
        "equity_increase_held",
        "150000.01000000",
        "100000.00000000",
        "100000.00000000",
    )
    assert "max_equity_increase_pct" in body["message"]
    assert body["emergency"] == []
    within = bot_client(account).post(f"/api/accounts/{account.pk}/metrics", {"equity": "150000"}, format="json")
    assert (within.status_code, within.json()["equity"]) == (200, "150000.00000000")
    assert "code" not in within.json()


def test_a_risk_admin_confirms_the_held_figure_over_http():
    account = funded_account("100000")
    bot_client(account).post(f"/api/accounts/{account.pk}/metrics", {"equity": "400000"}, format="json")
    client, operator = operator_client("risk_admin")

    response = client.post(
        f"/api/accounts/{account.pk}/equity/confirm", {"reason": "statement", "equity": "400000"}, format="json"
    )
    again = client.post(
        f"/api/accounts/{account.pk}/equity/confirm", {"reason": "again", "equity": "400000"}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["hold"]["status"], body["hold"]["equity"], body["account"]["equity"]) == (
        "confirmed",
        "400000.00000000",
        "400000.00000000",
    )
    assert error(again) == (409, "no_equity_hold")
    assert AuditEntry.objects.get(action="equity_hold.confirm").actor == operator
    assert equity_drift() == []


def test_confirming_a_figure_a_later_report_replaced_is_a_409_and_applies_nothing():
    account = funded_account("100000")
    bot = bot_client(account)
    bot.post(f"/api/accounts/{account.pk}/metrics", {"equity": "400000"}, format="json")
    bot.post(f"/api/accounts/{account.pk}/metrics", {"equity": "410000"}, format="json")
    client, _ = operator_client("risk_admin")
    before = written()

    response = client.post(
        f"/api/accounts/{account.pk}/equity/confirm", {"reason": "statement", "equity": "400000"}, format="json"
    )

    assert error(response) == (409, "equity_hold_changed")
    assert written() == before


def test_a_risk_admin_records_a_transfer_and_a_replay_answers_the_same():
    account = funded_account("100000")
    client, operator = operator_client("risk_admin")
    body = {"amount": "-2500.5", "reference": "wd-2031-03-04", "reason": "monthly payout"}

    first = client.post(f"/api/accounts/{account.pk}/transfers", body, format="json")
    replay = client.post(f"/api/accounts/{account.pk}/transfers", body, format="json")
    other = client.post(f"/api/accounts/{account.pk}/transfers", body | {"amount": "-2500"}, format="json")

    assert first.status_code == 201, first.json()
    data = first.json()
    assert (data["transfer"]["amount"], data["transfer"]["equity_after"], data["account"]["equity"]) == (
        "-2500.50000000",
        "97499.50000000",
        "97499.50000000",
    )
    assert (data["replayed"], replay.status_code, replay.json()["replayed"]) == (False, 200, True)
    assert replay.json()["transfer"] == data["transfer"]
    assert error(other) == (409, "idempotency_conflict")
    assert EquityTransfer.objects.get().recorded_by == operator
    assert AuditEntry.objects.filter(action="equity_transfer.record").count() == 1
    assert equity_drift() == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": "0", "reference": "r", "reason": "x"}, 400, "validation_error"),
        ({"amount": "NaN", "reference": "r", "reason": "x"}, 400, "validation_error"),
        ({"amount": "Infinity", "reference": "r", "reason": "x"}, 400, "validation_error"),
        ({"amount": "1.000000001", "reference": "r", "reason": "x"}, 400, "validation_error"),
        ({"amount": "10000000000", "reference": "r", "reason": "x"}, 400, "validation_error"),
        ({"amount": "1", "reference": "has space", "reason": "x"}, 400, "validation_error"),
        ({"amount": "1", "reference": "r" * 65, "reason": "x"}, 400, "validation_error"),
        ({"amount": "1", "reference": "r"}, 400, "validation_error"),
        ({"amount": "1", "reference": "r", "reason": 5}, 400, "validation_error"),
        ({"amount": "1", "reference": "r", "reason": "x", "equity": "5"}, 400, "validation_error"),
        ({"amount": "-100000.00000001", "reference": "r", "reason": "x"}, 409, "transfer_exceeds_equity"),
        ({"amount": "9999999999", "reference": "r", "reason": "x"}, 400, "amount_out_of_range"),
    ],
    ids=[
        "zero",
        "nan",
        "infinity",
        "nine-decimals",
        "too-large",
        "bad-reference",
        "long-reference",
        "no-reason",
        "numeric-reason",
        "unknown-field",
        "withdrawal-beyond-equity",
        "equity-beyond-numeric",
    ],
)
def test_a_refused_transfer_answers_its_code_and_writes_nothing(body, status, code):
    account = funded_account("100000")
    client, _ = operator_client("risk_admin")
    before = written()

    response = client.post(f"/api/accounts/{account.pk}/transfers", body, format="json")

    assert error(response) == (status, code), response.json()
    assert written() == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": "x"},
        {"reason": "", "equity": "400000"},
        {"reason": 5, "equity": "400000"},
        {"reason": "x", "equity": "NaN"},
        {"reason": "x", "equity": "-1"},
        {"reason": "x", "equity": "400000", "y": 1},
    ],
    ids=["empty", "no-figure-shown", "blank-reason", "numeric-reason", "nan", "negative", "unknown-field"],
)
def test_a_malformed_confirmation_is_a_400_and_applies_nothing(body):
    account = funded_account("100000")
    bot_client(account).post(f"/api/accounts/{account.pk}/metrics", {"equity": "400000"}, format="json")
    client, _ = operator_client("risk_admin")
    before = written()

    response = client.post(f"/api/accounts/{account.pk}/equity/confirm", body, format="json")

    assert error(response) == (400, "validation_error")
    assert written() == before


@pytest.mark.parametrize("who", ["bot", "viewer", "approver", "anonymous"])
@pytest.mark.parametrize("path", ["equity/confirm", "transfers"])
def test_only_risk_admins_confirm_held_equity_or_record_transfers(who, path):
    account = funded_account("100000")
    bot_client(account).post(f"/api/accounts/{account.pk}/metrics", {"equity": "400000"}, format="json")
    if who == "bot":
        client = bot_client(account)
    elif who == "anonymous":
        client = bot_client(account)
        client.credentials()
    else:
        client, _ = operator_client(who)
    before = written()

    response = client.post(
        f"/api/accounts/{account.pk}/{path}", {"reason": "x", "amount": "1", "reference": "r"}, format="json"
    )

    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] in ("not_authenticated", "permission_denied")
    assert written() == before


def test_an_unknown_account_is_a_404_for_both():
    client, _ = operator_client("risk_admin")

    confirm = client.post("/api/accounts/987654321/equity/confirm", {"reason": "x", "equity": "1"}, format="json")
    transfer = client.post(
        "/api/accounts/987654321/transfers", {"amount": "1", "reference": "r", "reason": "x"}, format="json"
    )

    assert error(confirm) == (404, "account_not_found")
    assert error(transfer) == (404, "account_not_found")
