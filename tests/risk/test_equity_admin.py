"""The equity desk in admin: confirming held increases and recording transfers (risk admins, audited, through the
same services as the API), the starting-balance note on the instance page, and deactivating a user through the
risk gate (its reservations cancelled, its accounts out of portfolio equity)."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEntry, TradingInstance
from risk.models import EquityHold, EquityTransfer, Portfolio
from tests.accounts.factories import OperatorFactory
from tests.risk.conftest import bot_client, counter_drift, equity_drift, funded_account
from tests.risk.services.scenario import reserve
from tests.risk.test_admin import admin_as, run_action
from trading.models import Position

pytestmark = pytest.mark.django_db

HOLDS_URL = reverse("admin:risk_equityhold_changelist")
TRANSFER_ADD_URL = reverse("admin:risk_equitytransfer_add")


@pytest.fixture(autouse=True)
def _no_marks(redis_client) -> None:
    """No cached mark, token or rate-limit key from another test."""


def held(account: TradingInstance, equity: str) -> EquityHold:
    response = bot_client(account).post(f"/api/accounts/{account.pk}/metrics", {"equity": equity}, format="json")
    assert response.status_code == 202
    return EquityHold.objects.get(instance=account, status="open")


def confirm_shown(client: Client, response) -> list[str]:
    """Submit the confirmation page `response` shows, as the operator's browser would."""
    page = response.content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page))
    ids = re.findall(r'name="_selected_action" value="(\d+)"', page)
    confirmed = client.post(HOLDS_URL, fields | {"_selected_action": ids}, follow=True)
    assert confirmed.status_code == 200
    return [str(message) for message in confirmed.context["messages"]]


def test_a_risk_admin_confirms_a_held_increase_in_admin_with_a_reason_after_seeing_the_figure():
    account = funded_account("100000")
    hold = held(account, "300000")
    client, operator = admin_as("risk_admin")

    without_reason = run_action(client, HOLDS_URL, "confirm", [hold.pk])
    shown = client.post(HOLDS_URL, {"action": "confirm", "_selected_action": [hold.pk], "reason": "statement checked"})
    account.refresh_from_db()
    assert account.equity == Decimal("100000")  # nothing applied before the operator saw the figure
    messages = confirm_shown(client, shown)

    assert without_reason == ["Confirming held equity needs a reason: nothing was applied."]
    assert "300000.00000000" in shown.content.decode()
    assert messages == [f"Account #{account.pk}: equity 300000.00000000 applied."]
    hold.refresh_from_db()
    assert (hold.status, hold.resolved_by) == ("confirmed", operator)
    account.refresh_from_db()
    assert account.equity == Decimal("300000")
    assert AuditEntry.objects.get(action="equity_hold.confirm").reason == "statement checked"
    assert equity_drift() == []


def test_a_figure_the_bot_replaced_after_the_operator_saw_the_hold_is_never_applied_unseen():
    """The operator selects the hold they saw at 300,000 on the list; meanwhile the bot replaced its held figure.
    The action shows the figure as it is now; one replaced after that page is refused."""
    account = funded_account("100000")
    hold = held(account, "300000")
    client, _ = admin_as("risk_admin")
    held(account, "9999999999")  # after the list page was rendered

    shown = client.post(HOLDS_URL, {"action": "confirm", "_selected_action": [hold.pk], "reason": "deposit"})
    account.refresh_from_db()
    assert account.equity == Decimal("100000")
    assert "9999999999.00000000" in shown.content.decode()
    held(account, "9999999998")  # after the confirmation page was rendered
    messages = confirm_shown(client, shown)

    hold.refresh_from_db()
    assert messages == [
        f"{hold}: The held figure is 9999999998.00000000 now, not 9999999999.00000000; nothing applied."
    ]
    account.refresh_from_db()
    assert account.equity == Decimal("100000")
    assert hold.status == "open"
    assert equity_drift() == []


def test_an_approver_sees_held_increases_but_cannot_confirm_them():
    account = funded_account("100000")
    hold = held(account, "300000")
    client, _ = admin_as("approver")

    page = client.get(HOLDS_URL)
    response = client.post(HOLDS_URL, {"action": "confirm", "_selected_action": [hold.pk], "reason": "x"})

    assert page.status_code == 200
    assert page.context["action_form"] is None  # no action offered
    assert response.status_code in (200, 302)
    hold.refresh_from_db()
    assert hold.status == "open"


def test_a_risk_admin_records_a_transfer_in_admin_and_a_zero_amount_is_a_form_error():
    account = funded_account("100000")
    client, operator = admin_as("risk_admin")
    form = {"instance": account.pk, "amount": "25000", "reference": "dep-9", "reason": "top-up"}

    zero = client.post(TRANSFER_ADD_URL, form | {"amount": "0"})
    added = client.post(TRANSFER_ADD_URL, form)

    assert zero.status_code == 200
    assert zero.context["adminform"].form.errors["amount"] == ["A transfer moves money: the amount cannot be 0."]
    assert added.status_code == 302
    transfer = EquityTransfer.objects.get()
    assert (transfer.amount, transfer.recorded_by, transfer.equity_after) == (
        Decimal("25000"),
        operator,
        Decimal("125000"),
    )
    assert Portfolio.objects.get().equity == Decimal("125000")
    assert AuditEntry.objects.filter(action="equity_transfer.record").count() == 1
    assert admin_as("approver")[0].get(TRANSFER_ADD_URL).status_code == 403


def test_a_withdrawal_beyond_the_equity_in_admin_is_an_error_message_and_records_nothing():
    """The service refuses it under the account's lock; the admin says so instead of failing with a 500."""
    account = funded_account("100000")
    client, _ = admin_as("risk_admin")
    before = (list(Portfolio.objects.values()), list(TradingInstance.objects.values()), AuditEntry.objects.count())

    response = client.post(
        TRANSFER_ADD_URL,
        {"instance": account.pk, "amount": "-100000.00000001", "reference": "wd-1", "reason": "payout"},
        follow=True,
    )

    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]] == [
        "Nothing was recorded: A withdrawal of 100000.00000001 exceeds the account's equity 100000.00000000."
    ]
    assert EquityTransfer.objects.count() == 0
    assert (list(Portfolio.objects.values()), list(TradingInstance.objects.values()), AuditEntry.objects.count()) == (
        before
    )


def test_the_instance_page_says_a_first_report_is_measured_against_the_starting_balance():
    account = funded_account("100000")
    client = Client()
    client.force_login(OperatorFactory(is_superuser=True))

    page = client.get(reverse("admin:accounts_tradinginstance_change", args=[account.pk]))

    assert page.status_code == 200
    assert "Left at 0, every first report is held." in page.content.decode()
    assert "starting_balance" in page.context["adminform"].form.fields


def test_deactivating_a_user_in_admin_cancels_its_reservations_and_takes_its_accounts_out():
    funded_account("100000")
    dropped = funded_account("40000")
    reserved = reserve(dropped, quantity="0.1")
    client = Client()
    client.force_login(OperatorFactory(is_superuser=True))
    user = dropped.user
    page = client.get(reverse("admin:accounts_user_change", args=[user.pk]))
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update(
        {
            "username": user.username,
            "email": user.email,
            "subscription_tier": user.subscription_tier,
            "date_joined_0": "2031-01-01",
            "date_joined_1": "00:00:00",
            "groups": [],
            "user_permissions": [],
            "trading_permission-TOTAL_FORMS": "0",
            "trading_permission-INITIAL_FORMS": "0",
            "api_tokens-TOTAL_FORMS": "0",
            "api_tokens-INITIAL_FORMS": "0",
        }
    )
    data.pop("is_active", None)  # unchecked

    response = client.post(reverse("admin:accounts_user_change", args=[user.pk]), data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.is_active is False
    assert Position.objects.get(pk=reserved.pk).status == "cancelled"
    assert Portfolio.objects.get().equity == Decimal("100000")
    assert AuditEntry.objects.filter(action="user.update", target_id=str(user.pk)).count() == 1
    assert equity_drift() == []
    assert counter_drift() == []
