"""Database constraints, cascades, PROTECT and the append-only audit trigger (real PostgreSQL)."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.db.utils import InternalError, ProgrammingError

from accounts.models import ApiToken, AuditEntry, BrokerCredential, TokenKind, TradingInstance, User, UserPermission
from tests.accounts.factories import (
    ApiTokenFactory,
    AuditEntryFactory,
    BrokerCredentialFactory,
    TradingInstanceFactory,
    UserFactory,
    UserPermissionFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("equity", Decimal("-0.00000001")),
        ("peak_equity", Decimal("-1")),
        ("starting_balance", Decimal("-0.00000001")),
        ("day_start_equity", Decimal("-1")),
        ("cash_balance", Decimal("-0.00000001")),
        ("exposure", Decimal("-1")),
        ("position_count", -1),
        ("status", "paused"),
    ],
)
def test_trading_instance_constraints_reject_invalid_values(field, value):
    instance = TradingInstanceFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        TradingInstance.objects.filter(pk=instance.pk).update(**{field: value})

    instance.refresh_from_db()
    assert getattr(instance, field) != value


def test_cash_balance_may_be_null_or_zero():
    instance = TradingInstanceFactory(cash_balance=Decimal("5"))

    TradingInstance.objects.filter(pk=instance.pk).update(cash_balance=None)
    assert TradingInstance.objects.get(pk=instance.pk).cash_balance is None
    TradingInstance.objects.filter(pk=instance.pk).update(cash_balance=Decimal("0"), starting_balance=Decimal("0"))
    assert TradingInstance.objects.get(pk=instance.pk).cash_balance == Decimal("0")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_position_size", Decimal("0")),
        ("max_daily_loss", Decimal("-5")),
        ("max_open_positions", 0),
        ("allowed_symbols", {"BTC-USD": True}),
    ],
)
def test_user_permission_constraints_reject_invalid_values(field, value):
    permission = UserPermissionFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        UserPermission.objects.filter(pk=permission.pk).update(**{field: value})

    permission.refresh_from_db()
    assert permission.max_position_size == Decimal("100000")
    assert permission.allowed_symbols == []


def test_one_permission_row_per_user():
    permission = UserPermissionFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        UserPermissionFactory(user=permission.user)

    assert UserPermission.objects.filter(user=permission.user).count() == 1


def test_credential_label_is_unique_per_user_only():
    credential = BrokerCredentialFactory(label="main")

    with pytest.raises(IntegrityError), transaction.atomic():
        BrokerCredentialFactory(user=credential.user, label="main")

    BrokerCredentialFactory(label="main")  # another user may reuse the label
    assert BrokerCredential.objects.filter(label="main").count() == 2


def test_bot_token_requires_an_instance_and_other_kinds_refuse_one():
    user = UserFactory()
    instance = TradingInstanceFactory(user=user)

    with pytest.raises(IntegrityError), transaction.atomic():
        ApiTokenFactory(kind=TokenKind.BOT, instance=None, user=user)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiTokenFactory(kind=TokenKind.FEED, instance=instance, user=user)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiTokenFactory(kind="admin", instance=None, user=user)

    assert ApiToken.objects.count() == 0
    ApiTokenFactory(kind=TokenKind.OPERATOR, instance=None, user=user)
    assert ApiToken.objects.count() == 1


def test_token_digest_is_unique():
    token = ApiTokenFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        ApiTokenFactory(digest=token.digest)

    assert ApiToken.objects.count() == 1


def test_deleting_a_user_without_history_deletes_credentials_tokens_and_permission():
    user = UserFactory()
    BrokerCredentialFactory(user=user)
    UserPermissionFactory(user=user)
    ApiTokenFactory(kind=TokenKind.FEED, instance=None, user=user)

    user.delete()

    assert BrokerCredential.objects.count() == 0
    assert ApiToken.objects.count() == 0
    assert UserPermission.objects.count() == 0


def test_a_user_with_a_trading_instance_is_protected():
    instance = TradingInstanceFactory()

    with pytest.raises(ProtectedError), transaction.atomic():
        instance.user.delete()

    assert User.objects.filter(pk=instance.user_id).exists()
    assert TradingInstance.objects.filter(pk=instance.pk).exists()


def test_a_credential_used_by_an_instance_is_protected():
    instance = TradingInstanceFactory()

    with pytest.raises(ProtectedError), transaction.atomic():
        instance.broker_credential.delete()

    assert BrokerCredential.objects.filter(pk=instance.broker_credential_id).exists()


def test_a_user_with_audit_history_is_protected():
    entry = AuditEntryFactory()

    with pytest.raises(ProtectedError), transaction.atomic():
        entry.actor.delete()

    assert User.objects.filter(pk=entry.actor_id).exists()


def test_audit_entries_cannot_be_updated_or_deleted():
    entry = AuditEntryFactory(reason="original")

    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditentry")

    entry.refresh_from_db()
    assert entry.reason == "original"
    assert AuditEntry.objects.count() == 1


def test_operator_roles_exist_with_their_permissions():
    codenames = {
        group.name: set(group.permissions.filter(content_type__app_label="accounts").values_list("codename", flat=True))
        for group in Group.objects.filter(name__in=["viewer", "approver", "risk_admin"])
    }

    assert codenames["viewer"] == {
        "view_user",
        "view_userpermission",
        "view_tradinginstance",
        "view_apitoken",
        "view_auditentry",
    }
    assert codenames["approver"] >= codenames["viewer"]
    assert codenames["risk_admin"] == codenames["viewer"] | {
        "change_userpermission",
        "change_tradinginstance",
        "view_brokercredential",
    }
