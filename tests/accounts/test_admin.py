"""The accounts admin: masked secrets, token shown once, edits through services, bounded changelist queries."""

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory

from accounts.authentication import BearerTokenAuthentication
from accounts.models import (
    ApiToken,
    AuditEntry,
    BrokerCredential,
    TokenKind,
    TradingInstance,
    User,
    UserPermission,
)
from accounts.selectors import user_permission_get
from accounts.tokens import token_digest
from nija.cache import TOKEN
from tests.accounts.factories import (
    AuditEntryFactory,
    BrokerCredentialFactory,
    TradingInstanceFactory,
    UserFactory,
    UserPermissionFactory,
    admin_user_form,
)

pytestmark = pytest.mark.django_db


def authenticate(raw_token: str):
    """The bearer authentication class on its own (a request through DRF's Request wrapper)."""
    from rest_framework.request import Request

    request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {raw_token}"))
    return BearerTokenAuthentication().authenticate(request)


@pytest.fixture
def operator_client(client, redis_client):
    operator = UserFactory(is_staff=True, is_superuser=True, username="root")
    client.force_login(operator)
    return client


def _changelist_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("model", "factory"),
    [
        ("tradinginstance", TradingInstanceFactory),
        ("brokercredential", BrokerCredentialFactory),
        ("apitoken", None),
        ("userpermission", UserPermissionFactory),
        ("auditentry", AuditEntryFactory),
    ],
)
def test_changelists_run_a_bounded_number_of_queries(operator_client, model, factory):
    from tests.accounts.factories import issue_token

    def make(count: int) -> None:
        for _ in range(count):
            factory() if factory else issue_token(TokenKind.BOT)

    url = reverse(f"admin:accounts_{model}_changelist")
    make(3)
    few = _changelist_queries(operator_client, url)
    make(30)
    many = _changelist_queries(operator_client, url)

    assert many == few


def test_trading_instance_changelist_shows_the_risk_columns(operator_client):
    instance = TradingInstanceFactory(
        name="alpha-bot", equity=Decimal("12345.5"), exposure=Decimal("777.25"), position_count=4
    )

    page = operator_client.get(reverse("admin:accounts_tradinginstance_changelist")).content.decode()

    for text in ("alpha-bot", instance.user.username, "12345.50000000", "777.25000000", "Running"):
        assert text in page


def test_credential_pages_never_render_a_secret(operator_client):
    credential = BrokerCredentialFactory(api_key="PLAIN-KEY-9876", api_secret="PLAIN-SECRET", passphrase="PLAIN-PASS")

    listing = operator_client.get(reverse("admin:accounts_brokercredential_changelist")).content.decode()
    change = operator_client.get(
        reverse("admin:accounts_brokercredential_change", args=[credential.pk])
    ).content.decode()

    for page in (listing, change):
        assert "****9876" in page
        for secret in ("PLAIN-KEY", "PLAIN-SECRET", "PLAIN-PASS", "gAAAAA"):
            assert secret not in page


def test_credential_created_in_admin_is_encrypted_and_audited(operator_client):
    user = UserFactory()
    response = operator_client.post(
        reverse("admin:accounts_brokercredential_add"),
        {
            "user": user.pk,
            "broker": "kraken",
            "label": "main",
            "is_active": "on",
            "new_api_key": "NEWKEY-0000-ABCD",
            "new_api_secret": "NEWSECRET",
            "new_passphrase": "",
        },
    )

    assert response.status_code == 302
    credential = BrokerCredential.objects.get(user=user, label="main")
    assert (credential.api_key, credential.api_secret, credential.passphrase) == ("NEWKEY-0000-ABCD", "NEWSECRET", None)
    assert credential.api_key_last4 == "ABCD"
    assert AuditEntry.objects.filter(action="broker_credential.create", target_id=str(credential.pk)).count() == 1


def test_blank_secret_inputs_on_change_keep_the_stored_secrets(operator_client):
    credential = BrokerCredentialFactory(api_key="KEEP-KEY-1111", api_secret="KEEP-SECRET")

    operator_client.post(
        reverse("admin:accounts_brokercredential_change", args=[credential.pk]),
        {
            "user": credential.user_id,
            "broker": "coinbase",
            "label": "renamed",
            "is_active": "on",
            "new_api_key": "",
            "new_api_secret": "ROTATED-SECRET",
            "new_passphrase": "",
        },
    )

    credential.refresh_from_db()
    assert (credential.label, credential.api_key, credential.api_secret) == (
        "renamed",
        "KEEP-KEY-1111",
        "ROTATED-SECRET",
    )


def test_token_created_in_admin_is_shown_once_and_never_again(operator_client):
    instance = TradingInstanceFactory()

    response = operator_client.post(
        reverse("admin:accounts_apitoken_add"),
        {"kind": "bot", "user": instance.user_id, "instance": instance.pk, "name": "prod bot"},
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(name="prod bot")
    page = response.content.decode()
    raw = page.split("it will not be shown again: ", 1)[1][:43]
    assert token_digest(raw) == token.digest
    assert page.count(raw) == 1
    assert "messages" not in response.cookies  # the message was consumed by this page, never stored
    later_pages = [
        operator_client.get(reverse("admin:accounts_apitoken_changelist")),
        operator_client.get(reverse("admin:accounts_apitoken_change", args=[token.pk])),
        operator_client.get(reverse("admin:accounts_user_change", args=[instance.user_id])),
    ]
    for later in later_pages:
        assert raw not in later.content.decode()
        assert token.digest not in later.content.decode()


def test_revoke_action_revokes_and_audits(operator_client):
    from tests.accounts.factories import issue_token

    raw = issue_token(TokenKind.FEED)
    token = ApiToken.objects.get(digest=token_digest(raw))

    operator_client.post(
        reverse("admin:accounts_apitoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]}
    )

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEntry.objects.filter(action="api_token.revoke", target_id=str(token.pk), actor_username="root").exists()


def test_audit_entries_are_read_only_in_admin(operator_client):
    entry = AuditEntryFactory()

    assert operator_client.get(reverse("admin:accounts_auditentry_changelist")).status_code == 200
    assert operator_client.get(reverse("admin:accounts_auditentry_add")).status_code == 403
    assert operator_client.post(reverse("admin:accounts_auditentry_delete", args=[entry.pk])).status_code == 403
    assert (
        operator_client.post(
            reverse("admin:accounts_auditentry_change", args=[entry.pk]), {"reason": "rewritten"}
        ).status_code
        == 403
    )
    entry.refresh_from_db()
    assert entry.reason == "test"


def test_instances_cannot_be_deleted_and_counters_are_read_only(operator_client):
    instance = TradingInstanceFactory(exposure=Decimal("10"), position_count=1)

    delete = operator_client.post(reverse("admin:accounts_tradinginstance_delete", args=[instance.pk]), {"post": "yes"})
    operator_client.post(
        reverse("admin:accounts_tradinginstance_change", args=[instance.pk]),
        {
            "name": "renamed",
            "status": "stopped",
            "is_active": "on",
            "broker_credential": instance.broker_credential_id,
            "starting_balance": "100000",
            "exposure": "0",
            "position_count": "0",
        },
    )

    assert delete.status_code == 403
    instance.refresh_from_db()
    assert (instance.name, instance.status, instance.exposure, instance.position_count) == (
        "renamed",
        "stopped",
        Decimal("10"),
        1,
    )
    assert AuditEntry.objects.filter(action="trading_instance.update", target_id=str(instance.pk)).count() == 1
    assert TradingInstance.objects.filter(pk=instance.pk).exists()


def test_a_limit_edited_in_admin_is_read_fresh_at_once(operator_client, django_capture_on_commit_callbacks):
    permission = UserPermissionFactory(max_position_size=Decimal("1000"))
    assert user_permission_get(user_id=permission.user_id).max_position_size == Decimal("1000")  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            reverse("admin:accounts_userpermission_change", args=[permission.pk]),
            {
                "can_trade": "on",
                "max_position_size": "2500.5",
                "max_daily_loss": "10000",
                "max_open_positions": "50",
                "allowed_symbols": '["btc-usd"]',
                "change_reason": "client upgrade",
            },
        )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    fresh = user_permission_get(user_id=permission.user_id)
    assert fresh.max_position_size == Decimal("2500.5")
    assert fresh.allowed_symbols == ("BTC-USD",)
    entry = AuditEntry.objects.get(action="user_permission.update")
    assert entry.before == {"max_position_size": "1000.00000000", "allowed_symbols": []}
    assert entry.after == {"max_position_size": "2500.5", "allowed_symbols": ["BTC-USD"]}
    assert (entry.reason, entry.actor_username) == ("client upgrade", "root")


def test_a_limit_edited_in_the_user_inline_is_read_fresh_at_once(operator_client, django_capture_on_commit_callbacks):
    permission = UserPermissionFactory(max_open_positions=50)
    user = permission.user
    assert user_permission_get(user_id=user.pk).max_open_positions == 50
    url = reverse("admin:accounts_user_change", args=[user.pk])
    form = {
        "username": user.username,
        "email": user.email,
        "subscription_tier": "pro",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "trading_permission-TOTAL_FORMS": "1",
        "trading_permission-INITIAL_FORMS": "1",
        "trading_permission-MIN_NUM_FORMS": "0",
        "trading_permission-MAX_NUM_FORMS": "1",
        "trading_permission-0-id": permission.pk,
        "trading_permission-0-user": user.pk,
        "trading_permission-0-can_trade": "on",
        "trading_permission-0-max_position_size": "100000",
        "trading_permission-0-max_daily_loss": "10000",
        "trading_permission-0-max_open_positions": "7",
        "trading_permission-0-allowed_symbols": "[]",
        "api_tokens-TOTAL_FORMS": "0",
        "api_tokens-INITIAL_FORMS": "0",
        "api_tokens-MIN_NUM_FORMS": "0",
        "api_tokens-MAX_NUM_FORMS": "0",
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(url, form)

    errors = response.context and [
        response.context["adminform"].form.errors,
        [f.errors for f in response.context["inline_admin_formsets"][0].formset.forms],
        response.context["inline_admin_formsets"][1].formset.non_form_errors(),
    ]
    assert response.status_code == 302, errors
    assert user_permission_get(user_id=user.pk).max_open_positions == 7
    assert UserPermission.objects.get(pk=permission.pk).max_open_positions == 7
    assert AuditEntry.objects.filter(action="user_permission.update", target_id=str(permission.pk)).count() == 1


def _credential_selects(queries) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if '"accounts_brokercredential"' in query["sql"]]


def test_credential_lookups_that_show_only_label_and_last4_never_decrypt(operator_client, settings):
    instance = TradingInstanceFactory(broker_credential__api_key="KEY-0000-0000-LAST")
    credential = instance.broker_credential
    # Under a key that cannot decrypt the rows, any page that decrypted a secret would fail.
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    pages = [
        reverse("admin:accounts_tradinginstance_change", args=[instance.pk]),
        reverse("admin:accounts_tradinginstance_add"),
        reverse("admin:accounts_tradinginstance_changelist"),
        reverse("admin:accounts_brokercredential_changelist"),
        reverse("admin:accounts_brokercredential_change", args=[credential.pk]),
    ]

    with CaptureQueriesContext(connection) as queries:
        responses = [operator_client.get(url) for url in pages]
        renamed = operator_client.post(
            pages[0],
            {
                "name": "renamed",
                "status": "running",
                "is_active": "on",
                "broker_credential": credential.pk,
                "starting_balance": "100000",
            },
        )

    assert [response.status_code for response in responses] == [200] * 5
    assert "****LAST" in responses[0].content.decode()
    assert renamed.status_code == 302
    assert TradingInstance.objects.get(pk=instance.pk).name == "renamed"
    selects = _credential_selects(queries)
    assert selects
    assert not [sql for sql in selects if "api_secret" in sql]


@pytest.mark.parametrize("case", ["operator_token_for_a_non_staff_user", "bot_token_on_another_users_instance"])
def test_token_creation_with_an_invalid_owner_shows_a_form_error_and_writes_nothing(operator_client, case):
    instance = TradingInstanceFactory()
    stranger = UserFactory()
    form = {
        "operator_token_for_a_non_staff_user": {"kind": "operator", "user": stranger.pk, "instance": "", "name": "x"},
        "bot_token_on_another_users_instance": {
            "kind": "bot",
            "user": stranger.pk,
            "instance": instance.pk,
            "name": "x",
        },
    }[case]

    response = operator_client.post(reverse("admin:accounts_apitoken_add"), form)

    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert errors == [
        {
            "operator_token_for_a_non_staff_user": "Operator tokens are for staff users only.",
            "bot_token_on_another_users_instance": "A bot token needs a trading instance of the same user.",
        }[case]
    ]
    assert "it will not be shown again" not in response.content.decode()
    assert ApiToken.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_removing_staff_in_admin_refuses_the_cached_operator_token_at_once_and_is_audited(
    operator_client, django_capture_on_commit_callbacks
):
    from tests.accounts.factories import issue_token

    staff = UserFactory(is_staff=True)
    raw = issue_token(TokenKind.OPERATOR, user=staff)
    authenticate(raw)  # now cached
    assert TOKEN.get(token_digest(raw))["is_staff"] is True
    viewer = Group.objects.get(name="viewer")

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            reverse("admin:accounts_user_change", args=[staff.pk]),
            admin_user_form(staff, is_staff=None, groups=[viewer.pk], subscription_tier="basic"),
        )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    cached = TOKEN.get(token_digest(raw))
    assert (cached["is_staff"], cached["tier"]) == (False, "basic")
    with pytest.raises(AuthenticationFailed):
        authenticate(raw)
    entry = AuditEntry.objects.get(action="user.update", target_id=str(staff.pk))
    assert entry.before == {"is_staff": True, "subscription_tier": "pro", "groups": []}
    assert entry.after == {"is_staff": False, "subscription_tier": "basic", "groups": ["viewer"]}
    assert entry.actor_username == "root"
    assert list(User.objects.get(pk=staff.pk).groups.values_list("name", flat=True)) == ["viewer"]


def test_a_user_added_in_admin_is_created_by_the_audited_service(operator_client):
    response = operator_client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "newbie",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase-42",
            "password2": "a-long-enough-passphrase-42",
            "email": "newbie@example.test",
            "subscription_tier": "basic",
        },
    )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    user = User.objects.get(username="newbie")
    assert user.check_password("a-long-enough-passphrase-42")
    assert UserPermission.objects.get(user=user).max_open_positions == 10  # the basic tier's default
    entry = AuditEntry.objects.get(action="user.create", target_id=str(user.pk))
    assert entry.after == {
        "username": "newbie",
        "email": "newbie@example.test",
        "subscription_tier": "basic",
        "password_set": True,
    }
    assert "a-long-enough-passphrase-42" not in str(entry.after)


def test_a_password_changed_in_admin_is_audited_without_the_password(operator_client):
    user = UserFactory()

    response = operator_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"usable_password": "true", "password1": "another-long-passphrase-7", "password2": "another-long-passphrase-7"},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("another-long-passphrase-7")
    entry = AuditEntry.objects.get(action="user.password_set", target_id=str(user.pk))
    assert (entry.after, entry.actor_username) == ({"password": "set"}, "root")


def test_deleting_a_user_in_admin_tombstones_its_tokens_and_a_user_with_history_is_kept(
    operator_client, django_capture_on_commit_callbacks
):
    from tests.accounts.factories import issue_token

    loner = UserFactory()
    raw = issue_token(TokenKind.FEED, user=loner)
    trader = TradingInstanceFactory().user

    with django_capture_on_commit_callbacks(execute=True):
        deleted = operator_client.post(reverse("admin:accounts_user_delete", args=[loner.pk]), {"post": "yes"})
        kept = operator_client.post(reverse("admin:accounts_user_delete", args=[trader.pk]), {"post": "yes"})

    assert deleted.status_code == 302
    assert not User.objects.filter(pk=loner.pk).exists()
    assert TOKEN.get(token_digest(raw))["revoked"] is True
    assert AuditEntry.objects.filter(action="user.delete", target_id=str(loner.pk)).count() == 1
    assert kept.status_code == 200  # Django's "cannot delete: protected objects" page
    assert User.objects.filter(pk=trader.pk).exists()
    assert not AuditEntry.objects.filter(action="user.delete", target_id=str(trader.pk)).exists()


def _instance_form(instance, **overrides) -> dict:
    form = {"name": instance.name, "status": instance.status, "is_active": "on"}
    form.update(overrides)
    return form


def test_an_instance_cannot_be_bound_to_another_users_credential_in_admin(operator_client):
    instance = TradingInstanceFactory()
    foreign = BrokerCredentialFactory()  # another user's
    own = instance.broker_credential

    changed = operator_client.post(
        reverse("admin:accounts_tradinginstance_change", args=[instance.pk]),
        _instance_form(instance, broker_credential=foreign.pk),
    )
    added = operator_client.post(
        reverse("admin:accounts_tradinginstance_add"),
        {"user": instance.user_id, "name": "second", "status": "stopped", "broker_credential": foreign.pk},
    )

    for response in (changed, added):
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["broker_credential"] == [
            "This broker credential belongs to another user."
        ]
    assert TradingInstance.objects.get(pk=instance.pk).broker_credential_id == own.pk
    assert not TradingInstance.objects.filter(name="second").exists()
    assert not AuditEntry.objects.exists()


def test_a_credentials_user_is_read_only_once_it_exists(operator_client):
    credential = BrokerCredentialFactory(label="main")
    other = UserFactory()

    page = operator_client.get(reverse("admin:accounts_brokercredential_change", args=[credential.pk]))
    response = operator_client.post(
        reverse("admin:accounts_brokercredential_change", args=[credential.pk]),
        {"user": other.pk, "broker": "coinbase", "label": "main", "is_active": "on"},
    )

    assert "user" not in page.context["adminform"].form.fields
    assert response.status_code == 302
    assert BrokerCredential.objects.get(pk=credential.pk).user_id == credential.user_id


def test_an_instance_added_in_admin_starts_at_zero_and_is_audited(operator_client):
    credential = BrokerCredentialFactory()
    forged = {
        "equity": "999999",
        "peak_equity": "999999",
        "day_start_equity": "999999",
        "equity_reported_at_0": "2026-01-01",
        "equity_reported_at_1": "00:00:00",
        "last_heartbeat_0": "2026-01-01",
        "last_heartbeat_1": "00:00:00",
        "exposure": "5",
        "position_count": "3",
    }

    page = operator_client.get(reverse("admin:accounts_tradinginstance_add"))
    response = operator_client.post(
        reverse("admin:accounts_tradinginstance_add"),
        {
            "user": credential.user_id,
            "broker_credential": credential.pk,
            "name": "fresh-bot",
            "status": "stopped",
            "is_active": "on",
            "starting_balance": "5000",
            **forged,
        },
    )

    assert set(page.context["adminform"].form.fields) == {
        "user",
        "broker_credential",
        "name",
        "status",
        "is_active",
        "starting_balance",
    }
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    instance = TradingInstance.objects.get(name="fresh-bot")
    assert (instance.starting_balance, instance.broker_credential_id) == (Decimal("5000"), credential.pk)
    assert (instance.equity, instance.peak_equity, instance.day_start_equity) == (0, 0, 0)
    assert (instance.exposure, instance.position_count) == (0, 0)
    assert (instance.last_heartbeat, instance.equity_reported_at, instance.cash_balance) == (None, None, None)
    entry = AuditEntry.objects.get(action="trading_instance.create", target_id=str(instance.pk))
    assert entry.after == {
        "user_id": credential.user_id,
        "name": "fresh-bot",
        "broker_credential": credential.pk,
        "status": "stopped",
        "is_active": True,
        "starting_balance": "5000",
    }
    assert entry.actor_username == "root"


def test_credential_field_changes_in_admin_are_audited_and_a_taken_label_is_a_form_error(operator_client):
    credential = BrokerCredentialFactory(label="main", broker="coinbase")
    BrokerCredentialFactory(user=credential.user, label="spare")
    url = reverse("admin:accounts_brokercredential_change", args=[credential.pk])

    taken = operator_client.post(url, {"broker": "kraken", "label": "spare", "is_active": "on"})
    changed = operator_client.post(url, {"broker": "kraken", "label": "main"})

    assert taken.status_code == 200
    assert taken.context["adminform"].form.errors["label"] == [
        "This user already has a broker credential with this label."
    ]
    assert changed.status_code == 302
    credential.refresh_from_db()
    assert (credential.broker, credential.label, credential.is_active) == ("kraken", "main", False)
    entry = AuditEntry.objects.get(action="broker_credential.update")
    assert (entry.before, entry.after) == (
        {"broker": "coinbase", "is_active": True},
        {"broker": "kraken", "is_active": False},
    )
