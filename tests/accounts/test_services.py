"""Permission cache (perm:), permission and token services: audit, validation, after-commit cache writes."""

import base64
import copy
import json
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone
from redis import Redis, RedisError

from accounts.caching import TOMBSTONE_VERSION, set_if_newer, version_of
from accounts.models import ApiToken, AuditEntry, SubscriptionTier, TokenKind, TradingInstance, User, UserPermission
from accounts.selectors import user_permission_get
from accounts.services import (
    api_token_create,
    api_token_revoke,
    trading_instance_update,
    user_delete,
    user_permission_ensure,
    user_permission_update,
    user_update,
)
from accounts.tasks import PERMISSION_CACHE_EVICT, permission_cache_evict
from accounts.tokens import token_digest
from nija.cache import PERM, TOKEN
from nija.symbols import is_canonical_symbol
from tests.accounts.factories import (
    BrokerCredentialFactory,
    OperatorFactory,
    TradingInstanceFactory,
    UserFactory,
    UserPermissionFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _redis(redis_client):
    return redis_client


def test_a_read_is_cached_and_a_warm_read_costs_no_query(django_assert_num_queries):
    permission = UserPermissionFactory(allowed_symbols=["BTC-USD"])
    first = user_permission_get(user_id=permission.user_id)

    with django_assert_num_queries(0):
        second = user_permission_get(user_id=permission.user_id)

    assert first == second
    assert second.max_position_size == Decimal("100000")
    assert isinstance(second.max_position_size, Decimal)
    assert second.allows_symbol("BTC-USD") is True
    assert second.allows_symbol("ETH-USD") is False


def test_a_reader_never_sees_the_old_limit_after_an_edit(django_capture_on_commit_callbacks):
    permission = UserPermissionFactory(max_daily_loss=Decimal("500"))
    assert user_permission_get(user_id=permission.user_id).max_daily_loss == Decimal("500")

    with django_capture_on_commit_callbacks(execute=True):
        user_permission_update(
            permission=permission, actor=OperatorFactory(), reason="risk review", max_daily_loss=Decimal("250")
        )

    assert user_permission_get(user_id=permission.user_id).max_daily_loss == Decimal("250")
    assert Decimal(PERM.get(str(permission.user_id))["max_daily_loss"]) == Decimal("250")


def test_a_stale_fill_cannot_overwrite_the_value_written_after_commit(django_capture_on_commit_callbacks):
    """A reader that loaded the row before the edit committed fills with an older version: the new value wins."""
    permission = UserPermissionFactory(max_open_positions=10)
    stale = user_permission_get(user_id=permission.user_id).to_json()
    stale_version = version_of(permission.updated_at)
    PERM.delete(str(permission.user_id))

    with django_capture_on_commit_callbacks(execute=True):
        user_permission_update(permission=permission, actor=None, reason="edit", max_open_positions=3)
    filled = set_if_newer(PERM, str(permission.user_id), stale, version=stale_version)

    assert filled is False
    assert user_permission_get(user_id=permission.user_id).max_open_positions == 3


def test_post_commit_writes_landing_out_of_order_keep_the_newest_value(django_capture_on_commit_callbacks):
    """Two committed edits whose cache writes run in reverse order (a stalled thread): the newer value stays."""
    permission = UserPermissionFactory(max_open_positions=10)
    with django_capture_on_commit_callbacks() as older:
        user_permission_update(permission=permission, actor=None, reason="first", max_open_positions=3)
    with django_capture_on_commit_callbacks() as newer:
        user_permission_update(permission=permission, actor=None, reason="second", max_open_positions=7)

    for callback in [*newer, *older]:
        callback()

    assert PERM.get(str(permission.user_id))["max_open_positions"] == 7
    assert PERM.get(str(permission.user_id))["version"] == version_of(
        UserPermission.objects.get(pk=permission.pk).updated_at
    )
    assert user_permission_get(user_id=permission.user_id).max_open_positions == 7


def test_a_newer_version_replaces_an_older_one_and_a_tombstone_is_never_overwritten():
    permission = UserPermissionFactory(max_open_positions=10)
    key = str(permission.user_id)
    fresh = user_permission_get(user_id=permission.user_id).to_json()  # a miss: filled with the row's version
    filled_version = PERM.get(key)["version"]
    PERM.delete(key)

    older = set_if_newer(PERM, key, {**fresh, "max_open_positions": 1}, version=1)
    newer = set_if_newer(PERM, key, fresh, version=version_of(permission.updated_at))
    tombstoned = set_if_newer(PERM, "tomb", {"gone": True}, version=TOMBSTONE_VERSION)
    overwritten = set_if_newer(PERM, "tomb", {"gone": False}, version=version_of(timezone.now()))

    assert filled_version == version_of(permission.updated_at)
    assert (older, newer) == (True, True)
    assert user_permission_get(user_id=permission.user_id).max_open_positions == 10
    assert (tombstoned, overwritten) == (True, False)
    assert PERM.get("tomb")["gone"] is True


@pytest.fixture
def broker():
    """The Celery broker's Redis database (the test Redis server, database 1), emptied before and after."""
    client = Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


def _queued_tasks(broker) -> list[tuple[str, list]]:
    messages = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
    return [(message["headers"]["task"], json.loads(base64.b64decode(message["body"]))[0]) for message in messages]


def test_a_failed_cache_write_after_commit_schedules_a_retried_eviction(django_capture_on_commit_callbacks, broker):
    permission = UserPermissionFactory(max_open_positions=10)
    user_permission_get(user_id=permission.user_id)  # cached: 10
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = "redis://127.0.0.1:1/0"

    with override_settings(CACHES=caches), django_capture_on_commit_callbacks(execute=True):
        user_permission_update(permission=permission, actor=None, reason="edit", max_open_positions=3)

    assert PERM.get(str(permission.user_id))["max_open_positions"] == 10  # the write failed: stale until evicted
    assert _queued_tasks(broker) == [(PERMISSION_CACHE_EVICT, [permission.user_id])]
    permission_cache_evict.apply(args=[permission.user_id]).get()
    assert PERM.get(str(permission.user_id)) is None
    assert user_permission_get(user_id=permission.user_id).max_open_positions == 3


def test_the_eviction_task_retries_while_redis_is_unreachable():
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = "redis://127.0.0.1:1/0"

    with override_settings(CACHES=caches):
        result = permission_cache_evict.apply(args=[42], retries=permission_cache_evict.max_retries)

    assert isinstance(result.result, RedisError)
    assert result.state == "FAILURE"
    assert permission_cache_evict.autoretry_for == (RedisError,)
    assert (permission_cache_evict.retry_backoff, permission_cache_evict.max_retries) == (2, 10)


def test_the_cache_is_not_touched_before_commit():
    permission = UserPermissionFactory(max_open_positions=10)
    user_permission_get(user_id=permission.user_id)

    user_permission_update(permission=permission, actor=None, reason="edit", max_open_positions=3)  # not committed

    assert PERM.get(str(permission.user_id))["max_open_positions"] == 10


def test_an_update_writes_one_audit_entry_with_before_and_after():
    operator = OperatorFactory()
    permission = UserPermissionFactory(can_trade=True, max_open_positions=50)

    user_permission_update(
        permission=permission, actor=operator, reason="incident 42", can_trade=False, max_open_positions=50
    )

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target_type, entry.target_id) == (
        "user_permission.update",
        "accounts.userpermission",
        str(permission.pk),
    )
    assert (entry.before, entry.after) == ({"can_trade": True}, {"can_trade": False})
    assert (entry.actor_id, entry.actor_username, entry.reason) == (operator.pk, operator.username, "incident 42")


@pytest.mark.parametrize(
    "changes",
    [
        {"max_position_size": Decimal("0")},
        {"max_open_positions": 0},
        {"allowed_symbols": ["BTCUSD"]},
        {"allowed_symbols": ["BTC-EUR"]},
        {"allowed_symbols": ["BTC-USD", "btc/usd"]},
        {"allowed_symbols": [7]},
        {"allowed_symbols": "BTC-USD"},
        {"subscription_tier": "pro"},
    ],
)
def test_an_invalid_update_writes_nothing(changes):
    permission = UserPermissionFactory()

    with pytest.raises(ValidationError):
        user_permission_update(permission=permission, actor=None, reason="bad", **changes)

    assert UserPermission.objects.get(pk=permission.pk).max_position_size == Decimal("100000")
    assert AuditEntry.objects.count() == 0


def test_allowed_symbols_are_stored_in_the_one_canonical_form():
    permission = UserPermissionFactory()

    user_permission_update(
        permission=permission, actor=None, reason="symbols", allowed_symbols=[" btc/usd", "eth_usd", "1inch-USD"]
    )

    permission.refresh_from_db()
    assert permission.allowed_symbols == ["BTC-USD", "ETH-USD", "1INCH-USD"]
    assert all(is_canonical_symbol(symbol) for symbol in permission.allowed_symbols)


def test_a_user_without_a_row_reads_the_tier_defaults_and_ensure_creates_it():
    user = UserFactory(subscription_tier=SubscriptionTier.BASIC)

    data = user_permission_get(user_id=user.pk)
    permission = user_permission_ensure(user=user)
    again = user_permission_ensure(user=user)

    assert (data.max_position_size, data.max_daily_loss, data.max_open_positions) == (
        Decimal("10000"),
        Decimal("1000"),
        10,
    )
    assert permission.pk == again.pk
    assert permission.max_position_size == Decimal("10000")


def test_permissions_are_read_from_postgresql_when_redis_is_unreachable():
    permission = UserPermissionFactory(max_open_positions=9)
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = "redis://127.0.0.1:1/0"

    with override_settings(CACHES=caches):
        data = user_permission_get(user_id=permission.user_id)

    assert data.max_open_positions == 9


def test_token_create_stores_only_the_digest_and_audits():
    instance = TradingInstanceFactory()
    operator = OperatorFactory()

    token, raw = api_token_create(kind=TokenKind.BOT, user=instance.user, instance=instance, name="b", actor=operator)

    assert len(raw) == 43
    assert token.digest == token_digest(raw)
    assert token.prefix == raw[:8]
    entry = AuditEntry.objects.get(action="api_token.create")
    assert raw not in str(entry.after)
    assert entry.after["prefix"] == raw[:8]


@pytest.mark.parametrize(
    "case", ["bot_without_instance", "bot_other_users_instance", "feed_with_instance", "operator_not_staff"]
)
def test_token_create_refuses_inconsistent_owners(case):
    user = UserFactory()
    instance = TradingInstanceFactory()
    kwargs = {
        "bot_without_instance": {"kind": TokenKind.BOT, "user": user},
        "bot_other_users_instance": {"kind": TokenKind.BOT, "user": user, "instance": instance},
        "feed_with_instance": {"kind": TokenKind.FEED, "user": instance.user, "instance": instance},
        "operator_not_staff": {"kind": TokenKind.OPERATOR, "user": user},
    }[case]

    with pytest.raises(ValidationError):
        api_token_create(name="x", **kwargs)

    assert ApiToken.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_revoke_is_idempotent_and_leaves_a_tombstone_after_commit(django_capture_on_commit_callbacks, redis_client):
    token, _ = api_token_create(kind=TokenKind.FEED, user=UserFactory(), name="feed")

    with django_capture_on_commit_callbacks(execute=True):
        api_token_revoke(token=token, actor=None, reason="first")
    first = ApiToken.objects.get(pk=token.pk).revoked_at
    with django_capture_on_commit_callbacks(execute=True):
        api_token_revoke(token=token, actor=None, reason="second")

    assert ApiToken.objects.get(pk=token.pk).revoked_at == first
    assert AuditEntry.objects.filter(action="api_token.revoke").count() == 1
    assert TOKEN.get(token.digest) == {"revoked": True, "version": TOMBSTONE_VERSION}
    assert 240 < redis_client.ttl(TOKEN.raw_key(token.digest)) <= 300


@pytest.mark.parametrize(
    "changes",
    [{"password": "x"}, {"date_joined": None}, {"subscription_tier": "platinum"}, {"email": "not-an-email"}],
)
def test_an_invalid_user_update_writes_nothing(changes, django_capture_on_commit_callbacks):
    user = UserFactory(email="kept@example.test")

    with pytest.raises(ValidationError), django_capture_on_commit_callbacks() as callbacks:
        user_update(user=user, actor=None, reason="bad", **changes)

    fresh = User.objects.get(pk=user.pk)
    assert (fresh.email, fresh.subscription_tier, fresh.updated_at) == (user.email, "pro", user.updated_at)
    assert AuditEntry.objects.count() == 0
    assert callbacks == []


def test_a_user_with_history_cannot_be_deleted_and_nothing_is_written():
    instance = TradingInstanceFactory()
    raw = api_token_create(kind=TokenKind.BOT, user=instance.user, instance=instance, name="bot")[1]

    with pytest.raises(ValidationError, match="deactivate"):
        user_delete(user=instance.user, actor=OperatorFactory(), reason="closing")

    assert User.objects.filter(pk=instance.user_id).exists()
    assert ApiToken.objects.filter(digest=token_digest(raw)).exists()
    assert not AuditEntry.objects.filter(action="user.delete").exists()


def test_an_instance_cannot_be_moved_to_another_users_credential():
    instance = TradingInstanceFactory()
    foreign = BrokerCredentialFactory()

    with pytest.raises(ValidationError) as refused:
        trading_instance_update(instance=instance, actor=None, reason="swap", broker_credential=foreign)

    assert refused.value.message_dict == {"broker_credential": ["This broker credential belongs to another user."]}
    assert TradingInstance.objects.get(pk=instance.pk).broker_credential_id == instance.broker_credential_id
    assert not AuditEntry.objects.exists()
