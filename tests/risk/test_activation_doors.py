"""Activation has one writer (risk.services.activation) whatever the door: the risk service, the admin's change
forms and deactivate action move the portfolio's equity exactly once and audit once; the accounts services refuse
`is_active` and write nothing; the accounts admin on its own shows it read-only. (No API endpoint changes it.)"""

from decimal import Decimal

import pytest
from django.contrib.admin import AdminSite
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.admin import TradingInstanceAdmin, UserAdmin
from accounts.models import AuditEntry, TradingInstance, User
from accounts.services import trading_instance_update, user_update
from risk.models import Portfolio
from risk.services.activation import trading_instance_activation_set, user_activation_set
from tests.accounts.factories import UserFactory, admin_user_form
from tests.risk.conftest import equity_drift, funded_account

pytestmark = pytest.mark.django_db


def root_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def instance_form(account: TradingInstance, *, active: bool) -> dict:
    form = {
        "name": account.name,
        "status": account.status,
        "starting_balance": str(account.starting_balance),
        "broker_credential": account.broker_credential_id or "",
    }
    return form | ({"is_active": "on"} if active else {})


def by_service(account: TradingInstance, active: bool) -> None:
    trading_instance_activation_set(instance_id=account.pk, active=active, actor=None, reason="door")


def by_user_service(account: TradingInstance, active: bool) -> None:
    user_activation_set(user_id=account.user_id, active=active, actor=None, reason="door")


def by_instance_form(account: TradingInstance, active: bool) -> None:
    url = reverse("admin:accounts_tradinginstance_change", args=[account.pk])
    response = root_client().post(url, instance_form(account, active=active))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors


def by_user_form(account: TradingInstance, active: bool) -> None:
    url = reverse("admin:accounts_user_change", args=[account.user_id])
    response = root_client().post(url, admin_user_form(account.user, is_active="on" if active else None))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors


def by_admin_action(account: TradingInstance, active: bool) -> None:
    if active:  # the changelist only deactivates
        return by_service(account, active)
    url = reverse("admin:accounts_tradinginstance_changelist")
    response = root_client().post(url, {"action": "deactivate", "_selected_action": [account.pk], "index": 0})
    assert response.status_code == 302
    return None


DOORS = {
    "instance service": (by_service, "trading_instance.update"),
    "user service": (by_user_service, "user.update"),
    "instance change form": (by_instance_form, "trading_instance.update"),
    "user change form": (by_user_form, "user.update"),
    "deactivate action": (by_admin_action, "trading_instance.update"),
}


def activation_entries(account: TradingInstance, action: str) -> list[tuple[dict, dict]]:
    target_id = account.user_id if action == "user.update" else account.pk
    entries = AuditEntry.objects.filter(action=action, target_id=str(target_id)).order_by("pk")
    return [(entry.before, entry.after) for entry in entries]


@pytest.mark.parametrize("door", DOORS)
def test_every_door_moves_the_portfolios_equity_exactly_once_and_audits_once(door):
    walk, action = DOORS[door]
    funded_account("100000")  # stays counted throughout
    account = funded_account("40000")
    assert Portfolio.objects.get().equity == Decimal("140000")

    walk(account, False)
    account.refresh_from_db()
    walk(account, False)  # the same change again moves nothing more
    out = Portfolio.objects.get().equity
    account.refresh_from_db()
    account.user.refresh_from_db()
    walk(account, True)
    back = Portfolio.objects.get().equity

    assert (out, back) == (Decimal("100000"), Decimal("140000"))
    inactive, active = {"is_active": False}, {"is_active": True}
    assert activation_entries(account, action) == [(active, inactive), (inactive, active)]
    assert equity_drift() == []


@pytest.mark.parametrize("door", ["instance", "user"])
def test_the_accounts_services_refuse_is_active_and_write_nothing(door):
    account = funded_account("40000")
    before = (Portfolio.objects.values().get(), TradingInstance.objects.values().get(pk=account.pk))

    if door == "user":
        change = lambda: user_update(user=account.user, actor=None, reason="door", is_active=False, first_name="Ann")  # noqa: E731
    else:
        change = lambda: trading_instance_update(instance=account, actor=None, reason="door", is_active=False, name="x")  # noqa: E731

    with pytest.raises(ValidationError) as refused:
        change()

    assert "risk.services.activation" in str(refused.value)
    after = (Portfolio.objects.values().get(), TradingInstance.objects.values().get(pk=account.pk))
    assert after == before
    assert User.objects.get(pk=account.user_id).is_active is True
    assert not AuditEntry.objects.filter(action__in=["user.update", "trading_instance.update"]).exists()


def test_the_accounts_admin_on_its_own_shows_is_active_read_only_on_change():
    """Without the risk app's admin (risk/admin.py registers subclasses), no accounts page can write it."""
    account = funded_account("40000")
    request = RequestFactory().get("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    site = AdminSite()

    instance_admin = TradingInstanceAdmin(TradingInstance, site)
    user_admin = UserAdmin(User, site)

    assert "is_active" in instance_admin.get_readonly_fields(request, account)
    assert "is_active" in user_admin.get_readonly_fields(request, account.user)
    assert "is_active" not in instance_admin.get_readonly_fields(request, None)  # a new instance may start inactive
    assert "deactivate" not in instance_admin.get_actions(request)
