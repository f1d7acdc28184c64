"""The lifecycle endpoints over HTTP: fill, close, cancel (bots, their own positions), approve/reject (approvers),
halt/resume (risk admins), equity reports; exact JSON (amounts as strings), the error shape, and who may call what."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from risk.models import RiskEvent, TradingState
from tests.risk.conftest import bot_client, counter_drift, funded_account, operator_client
from tests.risk.services.scenario import exposures, fill, reserve
from trading.models import Fill, Position, Trade


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark, token or rate-limit key from another test."""


def post(client, url: str, body: dict | None = None):
    return client.post(url, body, format="json") if body is not None else client.post(url)


def error_code(response) -> str:
    return response.json()["error"]["code"]


# ---------------------------------------------------------------------------------------------- fill / close
@pytest.mark.django_db
def test_a_bot_fills_its_position_and_a_replay_answers_the_same():
    account = funded_account("100000")
    position = reserve(account, quantity="0.3", price="50000")
    client = bot_client(account)
    body = {"exchange_order_id": "ex-1", "quantity": "0.1", "price": "49000", "fees": "1.5"}

    first = post(client, f"/api/positions/{position.pk}/fill", body)
    replay = post(client, f"/api/positions/{position.pk}/fill", body)

    assert first.status_code == 200, first.json()
    data = first.json()
    assert (data["id"], data["status"], data["filled_quantity"], data["entry_price"]) == (
        position.pk,
        "open",
        "0.10000000",
        "49000.00000000",
    )
    assert (data["notional"], data["fees"]) == ("14900.00000000", "1.50000000")
    assert replay.status_code == 200
    assert {k: v for k, v in replay.json().items() if k != "updated_at"} == {
        k: v for k, v in data.items() if k != "updated_at"
    }
    assert Fill.objects.count() == 1
    assert exposures(account)[0] == Decimal("14900")
    assert counter_drift() == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"exchange_order_id": "ex-1", "quantity": "0.1", "price": "49001"}, 409, "idempotency_conflict"),
        ({"exchange_order_id": "ex-2", "quantity": "0.20000001", "price": "49000"}, 409, "quantity_exceeded"),
        ({"exchange_order_id": "ex-2", "quantity": "0", "price": "49000"}, 400, "validation_error"),
        ({"exchange_order_id": "ex-2", "quantity": "0.1", "price": "49000", "status": "open"}, 400, "validation_error"),
    ],
    ids=["same-id-other-body", "over-fill", "zero", "server-owned-field"],
)
@pytest.mark.django_db
def test_a_refused_fill_answers_its_code_and_writes_nothing(body, status, code):
    account = funded_account("100000")
    position = reserve(account, quantity="0.3")
    fill(position, "ex-1", "0.1", "49000")
    stored = Position.objects.values().get(pk=position.pk)

    response = post(bot_client(account), f"/api/positions/{position.pk}/fill", body)

    assert (response.status_code, error_code(response)) == (status, code)
    assert Position.objects.values().get(pk=position.pk) == stored
    assert Fill.objects.count() == 1
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_bot_closes_partially_then_wholly_and_a_replay_returns_the_same_trade():
    account = funded_account("100000")
    position = fill(reserve(account, quantity="0.3"), "ex-1", "0.3", "50000")
    client = bot_client(account)
    partial = {"client_close_id": "c-1", "exit_price": "52000", "quantity": "0.1", "fees": "2"}

    first = post(client, f"/api/positions/{position.pk}/close", partial)
    replay = post(client, f"/api/positions/{position.pk}/close", partial)

    assert first.status_code == 200, first.json()
    trade = first.json()["trade"]
    assert (trade["quantity"], trade["entry_price"], trade["exit_price"], trade["pnl"], trade["fees"]) == (
        "0.10000000",
        "50000.00000000",
        "52000.00000000",
        "198.00000000",
        "2.00000000",
    )
    assert first.json()["position"]["status"] == "open"
    assert first.json()["position"]["notional"] == "10000.00000000"
    assert replay.status_code == 200
    assert replay.json()["trade"] == trade

    final = post(client, f"/api/positions/{position.pk}/close", {"client_close_id": "c-2", "exit_price": "49000"})

    assert final.status_code == 200
    assert (final.json()["trade"]["quantity"], final.json()["trade"]["pnl"]) == ("0.20000000", "-200.00000000")
    assert (final.json()["position"]["status"], final.json()["position"]["realized_pnl"]) == ("closed", "-2.00000000")
    assert Trade.objects.count() == 2
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    assert counter_drift() == []


@pytest.mark.django_db
def test_close_conflicts_and_illegal_closes_answer_409_and_write_nothing():
    account = funded_account("100000")
    position = fill(reserve(account, quantity="0.3"), "ex-1", "0.3", "50000")
    unfilled = reserve(account, quantity="0.1")
    client = bot_client(account)
    post(
        client,
        f"/api/positions/{position.pk}/close",
        {"client_close_id": "c-1", "exit_price": "51000", "quantity": "0.1"},
    )

    other_body = post(client, f"/api/positions/{position.pk}/close", {"client_close_id": "c-1", "exit_price": "51001"})
    too_much = post(
        client, f"/api/positions/{position.pk}/close", {"client_close_id": "c-2", "exit_price": "1", "quantity": "0.3"}
    )
    nothing_open = post(client, f"/api/positions/{unfilled.pk}/close", {"client_close_id": "c-3", "exit_price": "1"})

    assert (other_body.status_code, error_code(other_body)) == (409, "idempotency_conflict")
    assert (too_much.status_code, error_code(too_much)) == (409, "quantity_exceeded")
    assert (nothing_open.status_code, error_code(nothing_open)) == (409, "illegal_transition")
    assert Trade.objects.count() == 1
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_close_is_accepted_while_halted():
    account = funded_account("100000")
    position = fill(reserve(account, quantity="0.1"), "ex-1", "0.1", "50000")
    admin, _ = operator_client("risk_admin")
    assert post(admin, "/api/risk/halt", {"reason": "outage"}).status_code == 200

    response = post(
        bot_client(account), f"/api/positions/{position.pk}/close", {"client_close_id": "c", "exit_price": "50100"}
    )

    assert response.status_code == 200
    assert response.json()["trade"]["pnl"] == "10.00000000"
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_bot_cannot_touch_another_accounts_position_and_others_cannot_fill():
    mine, theirs = funded_account("100000"), funded_account("100000")
    position = reserve(theirs, quantity="0.1")
    viewer, _ = operator_client("viewer")
    body = {"exchange_order_id": "ex-1", "quantity": "0.1", "price": "50000"}
    client = bot_client(mine)

    answers = {
        "fill": post(client, f"/api/positions/{position.pk}/fill", body),
        "close": post(client, f"/api/positions/{position.pk}/close", {"client_close_id": "c", "exit_price": "1"}),
        "cancel": post(client, f"/api/positions/{position.pk}/cancel"),
        "unknown": post(client, "/api/positions/987654321/fill", body),
    }
    operator_fill = post(viewer, f"/api/positions/{position.pk}/fill", body)
    anonymous = post(APIClient(), f"/api/positions/{position.pk}/fill", body)

    assert {name: (r.status_code, error_code(r)) for name, r in answers.items()} == {
        name: (404, "position_not_found") for name in answers
    }
    assert (operator_fill.status_code, error_code(operator_fill)) == (403, "permission_denied")
    assert anonymous.status_code == 401
    assert Position.objects.get(pk=position.pk).status == "approved"
    assert (Fill.objects.count(), Trade.objects.count()) == (0, 0)
    assert counter_drift() == []


# ---------------------------------------------------------------------------------------------- cancel
@pytest.mark.django_db
def test_a_bot_cancels_its_reservation_and_again_changes_nothing():
    account = funded_account("100000")
    position = reserve(account, quantity="0.1")
    client = bot_client(account)

    first = post(client, f"/api/positions/{position.pk}/cancel")
    again = post(client, f"/api/positions/{position.pk}/cancel")
    with_body = post(client, f"/api/positions/{position.pk}/cancel", {"reason": "x"})

    assert (first.status_code, first.json()["status"]) == (200, "cancelled")
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")
    assert (with_body.status_code, error_code(with_body)) == (400, "validation_error")
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    assert counter_drift() == []


@pytest.mark.django_db
def test_an_approver_cancels_any_pending_position_a_viewer_cannot():
    account = funded_account("200000")
    position = reserve(account, quantity="0.6")
    viewer, _ = operator_client("viewer")
    approver, _ = operator_client("approver")

    refused = post(viewer, f"/api/positions/{position.pk}/cancel")
    done = post(approver, f"/api/positions/{position.pk}/cancel")

    assert refused.status_code == 403
    assert (done.status_code, done.json()["status"]) == (200, "cancelled")
    assert counter_drift() == []


# ---------------------------------------------------------------------------------------------- approve / reject
@pytest.mark.django_db
def test_an_approver_token_approves_and_the_audit_names_the_operator():
    account = funded_account("200000")
    position = reserve(account, quantity="0.6")
    client, operator = operator_client("approver")

    response = post(client, f"/api/positions/{position.pk}/approve", {"reason": "checked with the desk"})

    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["status"], data["notional"], data["decision_reason"]) == (
        "approved",
        "30000.00000000",
        "checked with the desk",
    )
    assert data["reservation_expires_at"] is not None
    entry = AuditEntry.objects.get(action="position.approve")
    assert (entry.actor, entry.reason, entry.target_id) == (operator, "checked with the desk", str(position.pk))
    assert (entry.before["status"], entry.after["status"]) == ("pending_approval", "approved")
    again = post(client, f"/api/positions/{position.pk}/approve", {})
    assert (again.status_code, error_code(again)) == (409, "illegal_transition")
    assert AuditEntry.objects.filter(action="position.approve").count() == 1
    assert counter_drift() == []


@pytest.mark.django_db
def test_an_approver_rejects_and_the_reservation_is_released():
    account = funded_account("200000")
    position = reserve(account, quantity="0.6")
    client, operator = operator_client("approver")

    response = post(client, f"/api/positions/{position.pk}/reject", {"reason": "too large"})

    assert (response.status_code, response.json()["status"]) == (200, "rejected")
    assert AuditEntry.objects.get(action="position.reject").actor == operator
    assert exposures(account) == (Decimal(0), 0, Decimal(0), 0, Decimal(0))
    assert counter_drift() == []


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": None}, {"reason": "x" * 1001}])
@pytest.mark.django_db
def test_a_rejection_without_a_reason_is_refused_and_changes_nothing(body):
    account = funded_account("200000")
    position = reserve(account, quantity="0.6")
    client, _ = operator_client("approver")

    response = post(client, f"/api/positions/{position.pk}/reject", body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "reason" in response.json()["error"]["fields"]
    assert Position.objects.get(pk=position.pk).status == "pending_approval"
    assert not AuditEntry.objects.filter(action="position.reject").exists()


@pytest.mark.parametrize("caller", ["bot", "viewer", "none"])
@pytest.mark.django_db
def test_only_approvers_decide(caller):
    account = funded_account("200000")
    position = reserve(account, quantity="0.6")
    client = {"bot": lambda: bot_client(account), "viewer": lambda: operator_client("viewer")[0], "none": APIClient}[
        caller
    ]()

    approve = post(client, f"/api/positions/{position.pk}/approve", {})
    reject = post(client, f"/api/positions/{position.pk}/reject", {})

    expected = 401 if caller == "none" else 403
    assert (approve.status_code, reject.status_code) == (expected, expected)
    assert Position.objects.get(pk=position.pk).status == "pending_approval"
    assert not AuditEntry.objects.filter(action__startswith="position.").exists()


# ---------------------------------------------------------------------------------------------- halt / resume
@pytest.mark.django_db
def test_a_risk_admin_halts_an_account_checks_are_rejected_and_resume_reopens(relaxed_rate_limits):
    account, other = funded_account("100000"), funded_account("100000")
    mine, theirs = reserve(account, quantity="0.1"), reserve(other, quantity="0.1")
    admin, operator = operator_client("risk_admin")
    bot = bot_client(account)
    check = {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": "0.01", "price": "50000"}

    halted = post(admin, "/api/risk/halt", {"account_id": account.pk, "mode": "halted", "reason": "misbehaving"})
    rejected = post(bot, "/api/risk/check-position", check)
    resumed = post(admin, "/api/risk/resume", {"account_id": account.pk, "reason": "fixed"})
    approved = post(bot, "/api/risk/check-position", check)

    assert halted.status_code == 200, halted.json()
    assert halted.json() | {"changed_at": None} == {
        "scope": "account",
        "account_id": account.pk,
        "state": "halted",
        "reason": "misbehaving",
        "changed_by": operator.username,
        "changed_at": None,
        "previous": "active",
        "cancelled_position_ids": [mine.pk],
    }
    assert (rejected.json()["decision"], [r["code"] for r in rejected.json()["reasons"]]) == (
        "rejected",
        ["trading_halted"],
    )
    assert (resumed.status_code, resumed.json()["state"], resumed.json()["previous"]) == (200, "active", "halted")
    assert approved.json()["decision"] == "approved"
    assert Position.objects.get(pk=theirs.pk).status == "approved"
    assert RiskEvent.objects.filter(type="trading_halted", severity="critical", instance=account).count() == 1
    assert AuditEntry.objects.filter(action="trading_state.change", actor=operator).count() == 2
    assert counter_drift() == []


@pytest.mark.django_db
def test_portfolio_reducing_over_the_api_keeps_reservations():
    account = funded_account("100000")
    position = reserve(account, quantity="0.1")
    admin, _ = operator_client("risk_admin")

    response = post(admin, "/api/risk/halt", {"mode": "reducing", "reason": "review"})

    assert response.status_code == 200
    assert (response.json()["scope"], response.json()["state"], response.json()["cancelled_position_ids"]) == (
        "portfolio",
        "reducing",
        [],
    )
    assert TradingState.objects.get(instance__isnull=True).state == "reducing"
    assert Position.objects.get(pk=position.pk).status == "approved"


@pytest.mark.parametrize("role", ["viewer", "approver"])
@pytest.mark.django_db
def test_only_risk_admins_halt_or_resume(role):
    client, _ = operator_client(role)

    halt = post(client, "/api/risk/halt", {"reason": "x"})
    resume = post(client, "/api/risk/resume", {"reason": "x"})

    assert (halt.status_code, resume.status_code) == (403, 403)
    assert TradingState.objects.get(instance__isnull=True).state == "active"
    assert not RiskEvent.objects.exists()


@pytest.mark.django_db
def test_halting_an_unknown_account_is_404_and_writes_nothing():
    admin, _ = operator_client("risk_admin")

    response = post(admin, "/api/risk/halt", {"account_id": 987654321, "reason": "x"})

    assert (response.status_code, error_code(response)) == (404, "account_not_found")
    assert not RiskEvent.objects.exists()
    assert not AuditEntry.objects.filter(action="trading_state.change").exists()


# ---------------------------------------------------------------------------------------------- equity report
@pytest.mark.django_db
def test_an_equity_report_that_reaches_the_emergency_drawdown_halts_the_account_once():
    account = funded_account("100000")
    funded_account("1000000")
    reserve(account, quantity="0.1")
    client = bot_client(account)

    first = post(client, f"/api/accounts/{account.pk}/metrics", {"equity": "75000", "cash_balance": "1000"})
    second = post(client, f"/api/accounts/{account.pk}/metrics", {"equity": "74000"})

    assert first.status_code == 200, first.json()
    body = first.json()
    assert (body["equity"], body["peak_equity"], body["day_start_equity"]) == (
        "75000.00000000",
        "100000.00000000",
        "100000.00000000",
    )
    assert body["state"] == {"portfolio": "active", "account": "halted"}
    assert len(body["emergency"]) == 1
    assert body["emergency"][0].startswith(f"account {account.pk} drawdown 0.25000000")
    assert second.json()["emergency"] == []
    assert RiskEvent.objects.filter(severity="critical").count() == 1
    assert exposures(account)[:2] == (Decimal(0), 0)
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_bot_cannot_report_another_accounts_equity():
    mine, theirs = funded_account("100000"), funded_account("100000")

    response = post(bot_client(mine), f"/api/accounts/{theirs.pk}/metrics", {"equity": "1"})

    assert (response.status_code, error_code(response)) == (404, "account_not_found")
    theirs.refresh_from_db()
    assert theirs.equity == Decimal("100000")


@pytest.mark.django_db
def test_amounts_whose_results_do_not_fit_the_books_answer_400_not_503_and_write_nothing():
    account = funded_account("100000")
    client = bot_client(account)
    position = reserve(account, quantity="1000", price="0.01")
    too_big_fill = post(
        client,
        f"/api/positions/{position.pk}/fill",
        {"exchange_order_id": "x-1", "quantity": "1000", "price": "9999999999"},
    )
    fill(position, "x-2", quantity="1000", price="0.01")
    too_big_close = post(
        client,
        f"/api/positions/{position.pk}/close",
        {"client_close_id": "c-1", "exit_price": "9999999999"},  # P&L about 1e13: beyond NUMERIC(18,8)
    )

    assert (too_big_fill.status_code, error_code(too_big_fill)) == (400, "validation_error")
    assert (too_big_close.status_code, error_code(too_big_close)) == (400, "amount_out_of_range")
    assert Trade.objects.count() == 0
    assert list(Fill.objects.values_list("exchange_order_id", flat=True)) == ["x-2"]
    assert counter_drift() == []


@pytest.mark.django_db
def test_a_released_rest_reads_as_released_and_no_longer_reserved(relaxed_rate_limits):
    """A halt releases the unfilled rest of an open position, which stays open. Its JSON still showed the
    reservation's deadline and nothing else, so a bot (the demo desk, after an operator's halt and resume) took the
    rest for still reserved and filled it: a fill after release, a warning event each, on the page."""
    account = funded_account("100000")
    position = reserve(account, quantity="0.3", price="50000")
    bot = bot_client(account)
    fill_body = {"exchange_order_id": "ex-1", "quantity": "0.1", "price": "50000"}
    assert post(bot, f"/api/positions/{position.pk}/fill", fill_body).json()["unfilled_released_at"] is None
    admin, _ = operator_client("risk_admin")

    post(admin, "/api/risk/halt", {"account_id": account.pk, "mode": "halted", "reason": "halt"})
    post(admin, "/api/risk/resume", {"account_id": account.pk, "reason": "resume"})
    read = bot.get(f"/api/positions/{position.pk}").json()

    released_at = Position.objects.get(pk=position.pk).unfilled_released_at
    assert released_at is not None
    assert (read["status"], read["filled_quantity"]) == ("open", "0.10000000")
    assert read["unfilled_released_at"] == released_at.isoformat().replace("+00:00", "Z")
