"""The risk desk in admin: changelists cost a fixed number of queries, the approval and kill-switch actions call
the services end to end (audited, counters exact), limit edits are audited and apply to the very next check, and
editing a correlation group's members recounts its exposure exactly."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditEntry, TradingInstance
from risk.models import CorrelationGroup, CorrelationGroupMember, Portfolio, RiskEvent, RiskLimits, TradingState
from risk.services.activation import trading_instance_activation_set
from risk.services.groups import correlation_group_recount
from tests.accounts.factories import OperatorFactory
from tests.risk.conftest import bot_client, counter_drift, funded_account
from trading.models import Position

pytestmark = pytest.mark.django_db


def admin_as(*roles: str) -> tuple[Client, object]:
    operator = OperatorFactory()
    operator.groups.add(*Group.objects.filter(name__in=roles))
    client = Client()
    client.force_login(operator)
    return client, operator


def check(account, quantity: str, symbol: str = "BTC-USD", price: str = "60000") -> dict:
    body = {"account_id": account.pk, "symbol": symbol, "side": "long", "quantity": quantity, "price": price}
    response = bot_client(account).post("/api/risk/check-position", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def run_action(client: Client, url: str, action: str, ids: list[int], reason: str = "") -> list[str]:
    response = client.post(url, {"action": action, "_selected_action": ids, "reason": reason, "index": 0}, follow=True)
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


POSITIONS_URL = reverse("admin:trading_position_changelist")
STATES_URL = reverse("admin:risk_tradingstate_changelist")


# ---------------------------------------------------------------------------------------------- approvals
def test_approve_action_approves_through_the_service_and_audits(relaxed_rate_limits):
    account = funded_account("1000000")
    pending = check(account, "0.5")  # n = 30,000 >= the approval threshold 25,000
    assert pending["decision"] == "pending_approval"
    client, operator = admin_as("approver")

    shown = run_action(client, POSITIONS_URL, "approve", [pending["position_id"]], reason="desk ok")

    position = Position.objects.get(pk=pending["position_id"])
    assert (position.status, position.decided_by_id, position.decision_reason) == ("approved", operator.pk, "desk ok")
    assert shown == [f"{position}: approved."]
    audit = AuditEntry.objects.get(action="position.approve")
    assert (audit.actor_id, audit.target_id, audit.reason) == (operator.pk, str(position.pk), "desk ok")
    assert (audit.before["status"], audit.after["status"]) == ("pending_approval", "approved")
    assert counter_drift() == []


def test_reject_action_needs_a_reason_then_releases_the_reservation(relaxed_rate_limits):
    account = funded_account("1000000")
    pending = check(account, "0.5")
    client, _ = admin_as("approver")

    refused = run_action(client, POSITIONS_URL, "reject", [pending["position_id"]], reason="")
    assert refused == ["A rejection needs a reason: nothing was rejected."]
    assert Position.objects.get(pk=pending["position_id"]).status == "pending_approval"
    assert not AuditEntry.objects.filter(action="position.reject").exists()

    shown = run_action(client, POSITIONS_URL, "reject", [pending["position_id"]], reason="too big today")

    position = Position.objects.get(pk=pending["position_id"])
    assert (position.status, position.decision_reason) == ("rejected", "too big today")
    assert shown == [f"{position}: rejected."]
    account.refresh_from_db()
    assert (account.exposure, account.position_count) == (Decimal(0), 0)
    assert AuditEntry.objects.filter(action="position.reject", target_id=str(position.pk)).count() == 1
    assert counter_drift() == []


def test_each_position_reports_its_own_outcome_and_409s_change_nothing(relaxed_rate_limits):
    account = funded_account("1000000")
    approved = check(account, "0.1")  # n = 6,000: approved at once
    pending = check(account, "0.5")
    client, _ = admin_as("approver")

    shown = run_action(client, POSITIONS_URL, "approve", [approved["position_id"], pending["position_id"]])

    first, second = Position.objects.get(pk=approved["position_id"]), Position.objects.get(pk=pending["position_id"])
    assert shown == [
        f"{first}: Only a position pending approval can be approved; this one is approved.",
        f"{second}: approved.",
    ]
    assert first.decided_by_id is None
    assert AuditEntry.objects.filter(action="position.approve").count() == 1
    assert counter_drift() == []


def test_approval_re_runs_the_rules_and_can_still_reject(relaxed_rate_limits):
    account = funded_account("1000000")
    pending = check(account, "0.5")
    RiskLimits.objects.filter(instance__isnull=True).update(max_position_pct=Decimal("0.01"))  # 10,000 now
    client, _ = admin_as("approver")

    shown = run_action(client, POSITIONS_URL, "approve", [pending["position_id"]])

    position = Position.objects.get(pk=pending["position_id"])
    assert position.status == "rejected"
    assert [reason["code"] for reason in position.reasons] == ["max_position_size"]
    assert shown[0].startswith(f"{position}: rejected at approval, the rules no longer pass: ")
    assert counter_drift() == []


def test_without_the_approver_role_the_actions_do_nothing(relaxed_rate_limits):
    account = funded_account("1000000")
    pending = check(account, "0.5")
    viewer, _ = admin_as("viewer")

    page = viewer.get(POSITIONS_URL)
    ignored = run_action(viewer, POSITIONS_URL, "approve", [pending["position_id"]], reason="x")

    assert page.status_code == 200  # viewers see the trading record (trading 0004)...
    assert page.context["action_form"] is None  # ...with no action offered
    assert ignored == []  # no action is offered (or run) without risk.approve_position
    assert Position.objects.get(pk=pending["position_id"]).status == "pending_approval"
    assert not AuditEntry.objects.filter(action="position.approve").exists()


def test_approvers_see_the_approval_actions_risk_admins_the_kill_switch():
    approver, _ = admin_as("approver")
    risk_admin, _ = admin_as("risk_admin")

    position_actions = approver.get(POSITIONS_URL).context["action_form"].fields["action"].choices
    state_actions = risk_admin.get(STATES_URL).context["action_form"].fields["action"].choices

    assert [name for name, _ in position_actions] == ["", "approve", "reject"]
    assert [name for name, _ in state_actions] == ["", "halt", "reduce_only", "resume"]
    assert approver.get(STATES_URL).context["action_form"] is None


# ---------------------------------------------------------------------------------------------- kill switch
def test_halt_and_resume_actions_call_the_kill_switch(relaxed_rate_limits):
    account = funded_account("1000000")
    reserved = check(account, "0.1")
    client, operator = admin_as("risk_admin")
    portfolio_state = TradingState.objects.get(instance__isnull=True)

    assert run_action(client, STATES_URL, "halt", [portfolio_state.pk]) == [
        "Changing the trading state needs a reason: nothing was changed."
    ]
    shown = run_action(client, STATES_URL, "halt", [portfolio_state.pk], reason="exchange outage")

    assert shown == ["Portfolio: halted (was active); 1 reservation(s) cancelled."]
    portfolio_state.refresh_from_db()
    assert (portfolio_state.state, portfolio_state.reason, portfolio_state.changed_by_id) == (
        "halted",
        "exchange outage",
        operator.pk,
    )
    assert Position.objects.get(pk=reserved["position_id"]).status == "cancelled"
    assert RiskEvent.objects.filter(type="trading_halted", severity="critical").count() == 1
    assert counter_drift() == []

    resumed = run_action(client, STATES_URL, "resume", [portfolio_state.pk], reason="back")
    reduced = run_action(client, STATES_URL, "reduce_only", [portfolio_state.pk], reason="review")

    assert resumed == ["Portfolio: active (was halted)."]
    assert reduced == ["Portfolio: reducing (was active)."]
    assert [
        entry.after["state"] for entry in AuditEntry.objects.filter(action="trading_state.change").order_by("id")
    ] == [
        "halted",
        "active",
        "reducing",
    ]


# ---------------------------------------------------------------------------------------------- limits
def limits_form(limits: RiskLimits, **changes) -> dict:
    data = {
        name: "" if getattr(limits, name) is None else str(getattr(limits, name)) for name in RiskLimits.LIMIT_FIELDS
    }
    return data | {name: str(value) for name, value in changes.items()}


def test_a_limits_edit_is_audited_and_applies_to_the_next_check(relaxed_rate_limits):
    account = funded_account("100000")
    assert check(account, "0.1")["decision"] == "approved"  # n = 6,000 <= 0.20 x 100,000
    client, operator = admin_as("risk_admin")
    default = RiskLimits.objects.get(instance__isnull=True)
    url = reverse("admin:risk_risklimits_change", args=[default.pk])

    response = client.post(url, limits_form(default, max_position_pct="0.05") | {"change_reason": "volatile week"})

    assert response.status_code == 302
    default.refresh_from_db()
    assert default.max_position_pct == Decimal("0.05")
    audit = AuditEntry.objects.get(action="risk_limits.change")
    assert (audit.actor_id, audit.target_id, audit.reason) == (operator.pk, str(default.pk), "volatile week")
    assert (audit.before, audit.after) == (
        {"max_position_pct": "0.200000"},
        {"account_id": None, "max_position_pct": "0.050000"},
    )
    rejected = check(account, "0.1")
    assert rejected["decision"] == "rejected"
    assert [(r["code"], r["limit"]) for r in rejected["reasons"]] == [("max_position_size", "5000.00000000")]


def test_an_account_override_is_audited_and_the_default_must_stay_complete(relaxed_rate_limits):
    account = funded_account("100000")
    client, _ = admin_as("risk_admin")
    default = RiskLimits.objects.get(instance__isnull=True)

    incomplete = client.post(
        reverse("admin:risk_risklimits_change", args=[default.pk]), limits_form(default, max_drawdown_pct="")
    )
    assert incomplete.status_code == 200  # the form again, with the error
    assert "max_drawdown_pct" in incomplete.context["adminform"].form.errors
    default.refresh_from_db()
    assert default.max_drawdown_pct == Decimal("0.2")

    empty = {name: "" for name in RiskLimits.LIMIT_FIELDS}
    added = client.post(
        reverse("admin:risk_risklimits_add"), empty | {"instance": account.pk, "max_total_positions": 1}
    )

    assert added.status_code == 302
    override = RiskLimits.objects.get(instance=account)
    assert override.max_total_positions == 1
    audit = AuditEntry.objects.get(action="risk_limits.create")
    assert (audit.before, audit.after) == (None, {"account_id": account.pk, "max_total_positions": 1})
    assert check(account, "0.01")["decision"] == "approved"
    assert [r["code"] for r in check(account, "0.01")["reasons"]] == ["max_open_positions"]


# ---------------------------------------------------------------------------------------------- groups
def group_form(name: str, limit: str, members: list[tuple[int | None, str, bool]], initial: int = 0) -> dict:
    data = {
        "name": name,
        "limit_pct": limit,
        "description": "",
        "members-TOTAL_FORMS": str(len(members)),
        "members-INITIAL_FORMS": str(initial),
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
    }
    for index, (member_id, symbol, delete) in enumerate(members):
        data |= {f"members-{index}-symbol": symbol, f"members-{index}-id": member_id or ""}
        if delete:
            data[f"members-{index}-DELETE"] = "on"
    return data


def test_adding_and_removing_members_recounts_the_group_exactly(relaxed_rate_limits):
    account = funded_account("10000000")
    btc = Decimal(check(account, "0.1")["notional"])  # 6,000
    eth = Decimal(check(account, "2", symbol="ETH-USD", price="3000.5")["notional"])  # 6,001
    check(account, "10", symbol="SOL-USD", price="150")
    client, operator = admin_as("risk_admin")

    created = client.post(
        reverse("admin:risk_correlationgroup_add"),
        group_form("majors", "0.5", [(None, "btc-usd", False), (None, "ETH-USD", False)]),
    )

    assert created.status_code == 302
    group = CorrelationGroup.objects.get(name="majors")
    assert sorted(group.members.values_list("symbol", flat=True)) == ["BTC-USD", "ETH-USD"]
    assert group.exposure == btc + eth == Decimal("12001")
    assert counter_drift() == []
    audit = AuditEntry.objects.get(action="correlation_group.create")
    assert audit.after == {
        "name": "majors",
        "limit_pct": "0.500000",
        "symbols": ["BTC-USD", "ETH-USD"],
        "exposure": "12001.00000000",
    }

    eth_member = group.members.get(symbol="ETH-USD")
    btc_member = group.members.get(symbol="BTC-USD")
    changed = client.post(
        reverse("admin:risk_correlationgroup_change", args=[group.pk]),
        group_form("majors", "0.5", [(btc_member.pk, "BTC-USD", False), (eth_member.pk, "ETH-USD", True)], initial=2),
    )

    assert changed.status_code == 302
    group.refresh_from_db()
    assert group.exposure == btc
    assert counter_drift() == []
    entry = AuditEntry.objects.get(action="correlation_group.change")
    assert (entry.actor_id, entry.before["symbols"], entry.after["symbols"]) == (
        operator.pk,
        ["BTC-USD", "ETH-USD"],
        ["BTC-USD"],
    )
    # The next check in the group moves the recounted counter by its notional.
    check(account, "0.1")
    group.refresh_from_db()
    assert group.exposure == btc * 2
    assert counter_drift() == []


def test_a_member_symbol_must_be_canonical_and_unique():
    client, _ = admin_as("risk_admin")
    CorrelationGroupMember.objects.create(
        group=CorrelationGroup.objects.create(name="alts", limit_pct=1), symbol="SOL-USD"
    )

    response = client.post(
        reverse("admin:risk_correlationgroup_add"),
        group_form("others", "0.5", [(None, "not a symbol", False), (None, "SOL-USD", False)]),
    )

    assert response.status_code == 200
    assert not CorrelationGroup.objects.filter(name="others").exists()


def test_recount_counts_only_positions_that_hold_exposure(relaxed_rate_limits):
    account = funded_account("1000000")
    held = Decimal(check(account, "0.1")["notional"])
    cancelled = check(account, "0.2")
    bot_client(account).post(f"/api/positions/{cancelled['position_id']}/cancel", format="json")
    group = CorrelationGroup.objects.create(name="g", limit_pct=Decimal("0.5"), exposure=Decimal("999"))
    CorrelationGroupMember.objects.create(group=group, symbol="BTC-USD")

    recounted = correlation_group_recount(group=group)

    assert recounted.exposure == held == Decimal("6000")
    assert CorrelationGroup.objects.get(pk=group.pk).exposure == held


# ---------------------------------------------------------------------------------------------- changelists
# Pinned queries of one changelist page for a non-superuser operator: the session's user, its permissions (user and
# group), the page's count and its rows with what they display joined or prefetched, plus a filter's or date hierarchy's
# values where the page has one. The same at 2 and at 32 rows of each kind.
CHANGELISTS = {
    "admin:trading_position_changelist": 6,
    "admin:risk_risklimits_changelist": 5,
    "admin:risk_tradingstate_changelist": 5,
    "admin:risk_correlationgroup_changelist": 7,
    "admin:risk_riskevent_changelist": 8,
    "admin:risk_portfolio_changelist": 5,
    "admin:risk_symbolexposure_changelist": 5,
}


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def add_rows(count: int) -> None:
    from tests.accounts.factories import TradingInstanceFactory
    from tests.trading.factories import PositionFactory

    for index in range(count):
        instance = TradingInstanceFactory()
        PositionFactory(instance=instance, pending=True)
        RiskLimits.objects.create(instance=instance, max_total_positions=index + 1)
        TradingState.objects.create(instance=instance, state="halted", reason="r")
        group = CorrelationGroup.objects.create(name=f"group-{index}-{instance.pk}", limit_pct=Decimal("0.5"))
        CorrelationGroupMember.objects.create(group=group, symbol=f"X{instance.pk}-USD")
        RiskEvent.objects.create(type=f"type-{index % 3}", severity="warning", instance=instance, message="m")


@pytest.mark.parametrize(("name", "expected"), CHANGELISTS.items())
def test_changelists_cost_the_same_queries_at_any_size(name, expected):
    client, _ = admin_as("approver", "risk_admin")
    url = reverse(name)
    add_rows(2)
    small = queries(client, url)
    add_rows(30)
    large = queries(client, url)
    assert small == large == expected


# ---------------------------------------------------------------------------------------------- concurrency
MEMBERSHIP_ROUNDS = 8
CHECKS_PER_ROUND = 16


@pytest.mark.django_db(transaction=True)
def test_member_edits_racing_checks_leave_the_group_exact_and_never_deadlock(settings, relaxed_rate_limits):
    """Each round: 16 checks of BTC-USD and one admin save that adds BTC-USD to (or removes it from) the group,
    released together from separate threads, each committing for real. Whatever the interleaving, the recount and
    the checks' deltas together leave the group's counter equal to its positions, and nothing waits on a lock."""
    from django.utils import timezone

    from risk.services.check import CheckInput, position_check
    from tests.risk.threads import Crowd, raised

    settings.RISK_LOCK_TIMEOUT_MS = settings.RISK_STATEMENT_TIMEOUT_MS = 30_000
    RiskLimits.objects.filter(instance__isnull=True).update(max_total_positions=1_000_000)
    account = funded_account("100000000")
    group = CorrelationGroup.objects.create(name="majors", limit_pct=Decimal("5"))
    eth = CorrelationGroupMember.objects.create(group=group, symbol="ETH-USD")
    client, _ = admin_as("risk_admin")
    url = reverse("admin:risk_correlationgroup_change", args=[group.pk])
    request = CheckInput(
        account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal("0.01"), price=Decimal("60000")
    )

    def a_check():
        return position_check(request=request, user_id=account.user_id, now=timezone.now()).decision

    def membership():
        """Toggle BTC-USD's membership through the admin's change form."""
        btc = CorrelationGroupMember.objects.filter(group=group, symbol="BTC-USD").first()
        members = [(eth.pk, "ETH-USD", False)] + ([(btc.pk, "BTC-USD", True)] if btc else [(None, "BTC-USD", False)])
        return lambda: client.post(url, group_form("majors", "5", members, initial=1 + bool(btc))).status_code

    with Crowd(CHECKS_PER_ROUND + 1) as crowd:
        for _ in range(MEMBERSHIP_ROUNDS):
            results = crowd.run([a_check] * CHECKS_PER_ROUND + [membership()])

            assert raised(results) == []
            assert results == ["approved"] * CHECKS_PER_ROUND + [302]
            assert counter_drift() == []
    members = set(group.members.values_list("symbol", flat=True))
    assert members == {"ETH-USD"}  # added and removed four times
    assert AuditEntry.objects.filter(action="correlation_group.change").count() == MEMBERSHIP_ROUNDS


@pytest.mark.django_db
def test_deactivating_an_instance_in_admin_takes_its_equity_out_and_reactivating_keeps_its_own_day_start():
    funded_account("100000")
    dropped = funded_account("40000")
    client, _ = admin_as("risk_admin")
    url = "/admin/accounts/tradinginstance/"

    client.post(url, {"action": "deactivate", "_selected_action": [dropped.pk]})
    after_deactivation = Portfolio.objects.get()
    TradingInstance.objects.filter(pk=dropped.pk).update(equity=Decimal("50000"))  # its bot kept trading meanwhile
    trading_instance_activation_set(instance_id=dropped.pk, active=True, actor=None, reason="back")
    after_reactivation = Portfolio.objects.get()

    assert (after_deactivation.equity, after_deactivation.day_start_equity) == (Decimal("100000"), Decimal("100000"))
    # Back with its own start of day (40000): the 10000 it moved while away is today's P&L, not a new start.
    assert (after_reactivation.equity, after_reactivation.day_start_equity) == (Decimal("150000"), Decimal("140000"))
    assert AuditEntry.objects.filter(action="trading_instance.update", target_id=str(dropped.pk)).count() == 2
