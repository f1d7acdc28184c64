"""Writes of the accounts app: trading permissions, API tokens, broker credentials and the audit record.

Every operator-facing change runs in one transaction with its `AuditEntry`; caches are updated only after
the commit (`transaction.on_commit`), so no reader is served a value that was rolled back.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from celery import Task
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone

from accounts.caching import set_if_newer, version_of
from accounts.models import ApiToken, AuditEntry, BrokerCredential, TokenKind, TradingInstance, User, UserPermission
from accounts.selectors import REVOKED, user_permission_data
from accounts.tasks import permission_cache_evict
from accounts.tiers import permission_defaults
from accounts.tokens import PREFIX_LENGTH, generate_raw_token, token_digest
from nija.cache import PERM, TOKEN
from nija.symbols import canonical_symbol

logger = structlog.get_logger(__name__)

TOUCH_INTERVAL = timedelta(seconds=60)
# A key shorter than this shows no last 4 characters at all: 4 of 8 would reveal half of it.
LAST4_MIN_KEY_LENGTH = 12
PERMISSION_FIELDS = ("can_trade", "max_position_size", "max_daily_loss", "max_open_positions", "allowed_symbols")


# ------------------------------------------------------------------------------------------------
# Audit
# ------------------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def audit_entry_create(
    *,
    actor: User | None,
    action: str,
    target: Model | None = None,
    target_type: str = "",
    target_id: str = "",
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEntry:
    """Append one audit record (actor None = the system). The request id comes from the logging context."""
    if target is not None:
        target_type, target_id = target._meta.label_lower, str(target.pk)
    request_id = structlog.contextvars.get_contextvars().get("request_id", "")
    return AuditEntry.objects.create(
        actor=actor,
        actor_username=actor.get_username() if actor is not None else "",
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=None if before is None else {key: _jsonable(value) for key, value in before.items()},
        after=None if after is None else {key: _jsonable(value) for key, value in after.items()},
        reason=reason,
        request_id=str(request_id or "")[:64],
    )


# ------------------------------------------------------------------------------------------------
# Trading permissions
# ------------------------------------------------------------------------------------------------
def canonical_symbols(symbols: object) -> object:
    """Each entry of a list in canonical form (`" btc/usd"` -> `"BTC-USD"`, nija.symbols); an entry that cannot
    be one is kept as given, for `validate_symbol_list` to report. Anything but a list is returned unchanged."""
    if not isinstance(symbols, list):
        return symbols
    return [_canonical_or_given(symbol) for symbol in symbols]


def _canonical_or_given(symbol: object) -> object:
    try:
        return canonical_symbol(symbol)  # type: ignore[arg-type]
    except ValueError:
        return symbol


def _permission_values(permission: UserPermission) -> dict:
    return {field: getattr(permission, field) for field in PERMISSION_FIELDS}


def _cache_permission_after_commit(permission: UserPermission) -> None:
    """After commit, write the new limits to `perm:` unless a newer version is there; when Redis fails, a
    Celery task deletes the key with retries (a stale value must not outlive the outage by its TTL)."""
    user_id = permission.user_id
    data = user_permission_data(user_id=user_id, values=_permission_values(permission)).to_json()
    version = version_of(permission.updated_at)

    def write() -> None:
        if set_if_newer(PERM, str(user_id), data, version=version) is None:
            _schedule(permission_cache_evict, user_id)

    transaction.on_commit(write)


def _schedule(task: Task, *args: Any) -> None:
    """Enqueue `task` after commit (at once when no transaction is open); a broker error is logged, not raised:
    the write it follows has committed."""
    try:
        task.delay_on_commit(*args)
    except Exception:  # kombu and redis raise several types; the commit must stand
        logger.error("task_enqueue_failed", task=task.name, args=args, exc_info=True)


@transaction.atomic
def user_permission_ensure(*, user: User) -> UserPermission:
    """The user's permission row, created from the tier's defaults if missing (leans on the unique user_id)."""
    permission, created = UserPermission.objects.get_or_create(
        user=user, defaults=permission_defaults(user.subscription_tier)
    )
    if created:
        _cache_permission_after_commit(permission)
    return permission


@transaction.atomic
def user_permission_update(
    *, permission: UserPermission, actor: User | None, reason: str, **changes: Any
) -> UserPermission:
    """Change a user's limits: lock the row, validate, save, audit (before/after), refresh `perm:` after commit.

    Raises ValidationError for an unknown field or an invalid value; nothing is written then."""
    unknown = set(changes) - set(PERMISSION_FIELDS)
    if unknown:
        raise ValidationError(f"Not editable: {', '.join(sorted(unknown))}.")
    locked = UserPermission.objects.select_for_update().get(pk=permission.pk)
    before = _permission_values(locked)
    if "allowed_symbols" in changes:
        changes["allowed_symbols"] = canonical_symbols(changes["allowed_symbols"])
    for field, value in changes.items():
        setattr(locked, field, value)
    locked.full_clean(exclude=["user"], validate_unique=False, validate_constraints=False)
    after = _permission_values(locked)
    changed = [field for field in PERMISSION_FIELDS if before[field] != after[field]]
    if not changed:
        return locked
    locked.save(update_fields=[*changed, "updated_at"])
    audit_entry_create(
        actor=actor,
        action="user_permission.update",
        target=locked,
        before={field: before[field] for field in changed},
        after={field: after[field] for field in changed},
        reason=reason,
    )
    _cache_permission_after_commit(locked)
    return locked


# ------------------------------------------------------------------------------------------------
# API tokens
# ------------------------------------------------------------------------------------------------
def api_token_check_owner(*, kind: str, user: User, instance: TradingInstance | None) -> None:
    """ValidationError unless `user` (and `instance`) may own a token of `kind` (forms call it to show errors)."""
    if kind not in TokenKind.values:
        raise ValidationError(f"Unknown token kind {kind!r}.")
    if kind == TokenKind.BOT and (instance is None or instance.user_id != user.pk):
        raise ValidationError("A bot token needs a trading instance of the same user.")
    if kind != TokenKind.BOT and instance is not None:
        raise ValidationError("Only bot tokens are bound to a trading instance.")
    if kind == TokenKind.OPERATOR and not user.is_staff:
        raise ValidationError("Operator tokens are for staff users only.")


@transaction.atomic
def api_token_create(
    *, kind: str, user: User, instance: TradingInstance | None = None, name: str, actor: User | None = None
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the raw token, which exists nowhere else: show it once."""
    api_token_check_owner(kind=kind, user=user, instance=instance)
    raw_token = generate_raw_token()
    token = ApiToken.objects.create(
        kind=kind,
        user=user,
        instance=instance,
        name=name,
        digest=token_digest(raw_token),
        prefix=raw_token[:PREFIX_LENGTH],
    )
    audit_entry_create(
        actor=actor,
        action="api_token.create",
        target=token,
        after={
            "kind": kind,
            "name": name,
            "prefix": token.prefix,
            "user_id": user.pk,
            "instance_id": token.instance_id,
        },
    )
    return token, raw_token


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: User | None, reason: str = "") -> ApiToken:
    """Revoke a token (idempotent). After commit its `token:` entry becomes a tombstone, so every process
    answers 401 at once, even one that was about to re-cache the token from a read made before the revoke."""
    now = timezone.now()
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now, updated_at=now)
    token.refresh_from_db(fields=["revoked_at", "updated_at"])
    if updated:
        audit_entry_create(
            actor=actor,
            action="api_token.revoke",
            target=token,
            before={"revoked_at": None},
            after={"revoked_at": now},
            reason=reason,
        )
    digest = token.digest
    transaction.on_commit(lambda: TOKEN.set(digest, {REVOKED: True}, ttl=max(TOKEN.default_ttl or 0, 300)))
    return token


def api_token_touch(*, token_id: int, now: datetime) -> bool:
    """Record use: one conditional UPDATE, a no-op when the token was touched less than a minute ago."""
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_INTERVAL)
    return bool(ApiToken.objects.filter(stale, pk=token_id).update(last_used_at=now))


def api_token_touch_due(*, last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or last_used_at < now - TOUCH_INTERVAL


# ------------------------------------------------------------------------------------------------
# Broker credentials
# ------------------------------------------------------------------------------------------------
def api_key_last4(api_key: str) -> str:
    """The displayable tail of a key: its last 4 characters, or "" for a key too short to hide the rest."""
    return api_key[-4:] if len(api_key) >= LAST4_MIN_KEY_LENGTH else ""


@transaction.atomic
def broker_credential_create(
    *,
    user: User,
    broker: str,
    label: str,
    api_key: str,
    api_secret: str,
    passphrase: str | None = None,
    actor: User | None = None,
) -> BrokerCredential:
    """Store a credential encrypted; only the last 4 characters of the key are kept in clear (for display)."""
    credential = BrokerCredential.objects.create(
        user=user,
        broker=broker,
        label=label,
        api_key=api_key,
        api_secret=api_secret,
        passphrase=passphrase or None,
        api_key_last4=api_key_last4(api_key),
    )
    audit_entry_create(
        actor=actor,
        action="broker_credential.create",
        target=credential,
        after={"broker": broker, "label": label, "api_key_last4": credential.api_key_last4},
    )
    return credential


@transaction.atomic
def broker_credential_update_secrets(
    *, credential: BrokerCredential, actor: User | None, reason: str = "", **secrets: str | None
) -> BrokerCredential:
    """Replace some of api_key / api_secret / passphrase (blank values are ignored: write-only inputs)."""
    allowed = {"api_key", "api_secret", "passphrase"}
    changes = {field: value for field, value in secrets.items() if field in allowed and value}
    if not changes:
        return credential
    for field, value in changes.items():
        setattr(credential, field, value)
    update_fields = [*changes, "updated_at"]
    if "api_key" in changes:
        credential.api_key_last4 = api_key_last4(changes["api_key"])
        update_fields.append("api_key_last4")
    credential.save(update_fields=update_fields)
    audit_entry_create(
        actor=actor,
        action="broker_credential.update_secrets",
        target=credential,
        after={"fields": sorted(changes), "api_key_last4": credential.api_key_last4},
        reason=reason,
    )
    return credential


# ------------------------------------------------------------------------------------------------
# Trading instances (operator edits; the risk counters are never edited here)
# ------------------------------------------------------------------------------------------------
INSTANCE_OPERATOR_FIELDS = ("name", "status", "is_active", "broker_credential")


@transaction.atomic
def trading_instance_update(
    *, instance: TradingInstance, actor: User | None, reason: str = "", **changes: Any
) -> TradingInstance:
    """Operator edit of name, status, is_active or broker credential (audited). Risk counters, equity and
    heartbeats are moved by the risk services and the bot's reports, never here."""
    unknown = set(changes) - set(INSTANCE_OPERATOR_FIELDS)
    if unknown:
        raise ValidationError(f"Not editable: {', '.join(sorted(unknown))}.")
    locked = TradingInstance.objects.select_for_update().get(pk=instance.pk)
    attnames = {field: TradingInstance._meta.get_field(field).attname for field in changes}
    before = {field: getattr(locked, attnames[field]) for field in changes}
    for field, value in changes.items():
        setattr(locked, field, value)
    after = {field: getattr(locked, attnames[field]) for field in changes}
    changed = [field for field in changes if before[field] != after[field]]
    if not changed:
        return locked
    locked.save(update_fields=[*changed, "updated_at"])
    audit_entry_create(
        actor=actor,
        action="trading_instance.update",
        target=locked,
        before={field: before[field] for field in changed},
        after={field: after[field] for field in changed},
        reason=reason,
    )
    return locked
