"""Writes of the accounts app: users, trading permissions, API tokens, broker credentials, trading instances'
operator fields and the audit record.

Every operator-facing change runs in one transaction with its `AuditEntry`; caches are updated only after
the commit (`transaction.on_commit`), so no reader is served a value that was rolled back.

Activation (`is_active` of a user or an instance) is not written here: it moves the portfolio's equity, so its
one writer is `risk.services.activation`, which calls `user_tokens_recache` / `instance_tokens_recache` below.
`user_update` and `trading_instance_update` refuse an `is_active` change.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from celery import Task
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Model, ProtectedError, Q
from django.utils import timezone

from accounts.caching import TOMBSTONE_VERSION, set_if_newer, version_of
from accounts.models import (
    ApiToken,
    AuditEntry,
    BrokerCredential,
    InstanceStatus,
    SubscriptionTier,
    TokenKind,
    TradingInstance,
    User,
    UserPermission,
)
from accounts.selectors import REVOKED, cached_token_for, user_permission_data
from accounts.tasks import permission_cache_evict, token_cache_evict
from accounts.tiers import permission_defaults
from accounts.tokens import PREFIX_LENGTH, generate_raw_token, token_digest
from nija.cache import PERM, TOKEN
from nija.symbols import canonical_symbol

logger = structlog.get_logger(__name__)

TOUCH_INTERVAL = timedelta(seconds=60)
# A tombstone outlives any cached resolution written before it (TOKEN's TTL is 60 s).
TOKEN_TOMBSTONE_TTL = 300
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


def _refuse_unknown(changes: dict, editable: tuple[str, ...]) -> None:
    """ValidationError naming every field of `changes` that is not `editable` (nothing is written then)."""
    unknown = set(changes) - set(editable)
    if unknown:
        raise ValidationError(f"Not editable: {', '.join(sorted(unknown))}.")


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
    _refuse_unknown(changes, PERMISSION_FIELDS)
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
    locked.refresh_from_db()  # the stored NUMERIC(18,8) values (4000.00000000, not the 4000 given) are cached
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
# The token cache (token:<digest>): versioned writes after commit, retried evictions when Redis fails
# ------------------------------------------------------------------------------------------------
def _write_tokens_after_commit(entries: dict[str, dict], *, version: int, ttl: int | None = None) -> None:
    """After commit, write each `token:<digest>` entry unless a newer version (or a tombstone) is there; the
    digests whose write failed are evicted by a retried Celery task."""

    def write() -> None:
        failed = [
            digest
            for digest, value in entries.items()
            if set_if_newer(TOKEN, digest, value, version=version, ttl=ttl) is None
        ]
        if failed:
            _schedule(token_cache_evict, failed)

    if entries:
        transaction.on_commit(write)


def _tombstone_tokens_after_commit(digests: list[str]) -> None:
    """Every process answers 401 for these digests at once after commit, even one about to re-cache a token
    from a read made before the commit (a tombstone has the highest version)."""
    entries = {digest: {REVOKED: True} for digest in digests}
    _write_tokens_after_commit(entries, version=TOMBSTONE_VERSION, ttl=TOKEN_TOMBSTONE_TTL)


def user_tokens_recache(user: User) -> None:
    """After commit, re-cache every live token of `user` with the committed user fields (active, staff, tier,
    username), versioned by the user's updated_at, so no process keeps serving the old ones. The caller has saved
    the user (its updated_at moved) in the open transaction."""
    rows = ApiToken.objects.filter(user=user, revoked_at__isnull=True).values_list(
        "pk", "kind", "instance_id", "instance__is_active", "digest"
    )
    entries = {
        digest: cached_token_for(
            user, token_id=pk, kind=kind, instance_id=instance_id, instance_active=instance_active is not False
        ).to_json()
        for pk, kind, instance_id, instance_active, digest in rows
    }
    _write_tokens_after_commit(entries, version=version_of(user.updated_at))


# ------------------------------------------------------------------------------------------------
# Users: every admin write of a user (fields, roles, password, deletion) is audited and refreshes `token:`
# ------------------------------------------------------------------------------------------------
USER_FIELDS = (
    "username",
    "email",
    "first_name",
    "last_name",
    "is_staff",
    "is_superuser",
    "subscription_tier",
)
USER_M2M_FIELDS = ("groups", "user_permissions")
# The user fields a cached token resolution holds: a change re-caches the user's tokens after commit.
TOKEN_USER_FIELDS = ("username", "is_staff", "subscription_tier")
# Activation moves the portfolio's equity: its one writer is risk.services.activation (see the module docstring).
ACTIVATION_FIELD = "is_active"
ACTIVATION_REFUSED = "Activation moves the portfolio's equity: change it through risk.services.activation."


def _refuse_activation(changes: dict) -> None:
    if ACTIVATION_FIELD in changes:
        raise ValidationError({ACTIVATION_FIELD: ACTIVATION_REFUSED})


def _m2m_names(user: User, field: str) -> list[str]:
    if field == "groups":
        return sorted(user.groups.values_list("name", flat=True))
    return sorted(
        f"{app}.{codename}"
        for app, codename in user.user_permissions.values_list("content_type__app_label", "codename")
    )


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str,
    password: str | None,
    subscription_tier: str = SubscriptionTier.FREE,
    actor: User | None,
    reason: str = "",
) -> User:
    """Create a user (password None: unusable) with the tier's trading permission, audited.

    Raises ValidationError for an invalid or taken username or email; nothing is written then."""
    user = User(username=username, email=email, subscription_tier=subscription_tier)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    user_permission_ensure(user=user)
    audit_entry_create(
        actor=actor,
        action="user.create",
        target=user,
        after={
            "username": username,
            "email": email,
            "subscription_tier": subscription_tier,
            "password_set": bool(password),
        },
        reason=reason,
    )
    return user


@transaction.atomic
def user_update(*, user: User, actor: User | None, reason: str = "", **changes: Any) -> User:
    """Change a user's fields (USER_FIELDS) and roles (`groups`, `user_permissions`: iterables of rows): lock,
    validate, save, audit (before/after). After commit the user's cached token resolutions are rewritten, so a
    lost staff flag or a new tier take effect at once in every process.

    Raises ValidationError for an unknown field, an invalid value or `is_active` (risk.services.activation
    changes it); nothing is written then."""
    _refuse_activation(changes)
    _refuse_unknown(changes, (*USER_FIELDS, *USER_M2M_FIELDS))
    locked = User.objects.select_for_update().get(pk=user.pk)
    before, after = _user_apply_fields(locked, {k: v for k, v in changes.items() if k in USER_FIELDS})
    for field in USER_M2M_FIELDS:
        if field in changes:
            _user_apply_m2m(locked, field, changes[field], before, after)
    if not before:
        return locked
    audit_entry_create(actor=actor, action="user.update", target=locked, before=before, after=after, reason=reason)
    if set(before) & set(TOKEN_USER_FIELDS):
        user_tokens_recache(locked)
    return locked


def _user_apply_fields(locked: User, changes: dict) -> tuple[dict, dict]:
    """Set, validate and save the changed concrete fields; (before, after) of the changed ones."""
    before = {field: getattr(locked, field) for field in changes}
    for field, value in changes.items():
        setattr(locked, field, value)
    changed = [field for field in changes if before[field] != getattr(locked, field)]
    if not changed:
        return {}, {}
    untouched = [field.name for field in User._meta.fields if field.name not in changed]
    locked.full_clean(exclude=untouched)
    locked.save(update_fields=[*changed, "updated_at"])
    return {field: before[field] for field in changed}, {field: getattr(locked, field) for field in changed}


def _user_apply_m2m(locked: User, field: str, rows: Any, before: dict, after: dict) -> None:
    """Replace a role relation (groups or user_permissions) when it differs, recording names before and after."""
    model = Group if field == "groups" else Permission
    wanted = {row.pk for row in rows}
    current = set(getattr(locked, field).values_list("pk", flat=True))
    if wanted == current:
        return
    before[field] = _m2m_names(locked, field)
    getattr(locked, field).set(model.objects.filter(pk__in=wanted))
    after[field] = _m2m_names(locked, field)


@transaction.atomic
def user_password_set(*, user: User, password: str | None, actor: User | None, reason: str = "") -> User:
    """Set a user's password (None: unusable, password login disabled), audited without any hash."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    if password:
        locked.set_password(password)
    else:
        locked.set_unusable_password()
    locked.save(update_fields=["password", "updated_at"])
    audit_entry_create(
        actor=actor,
        action="user.password_set",
        target=locked,
        after={"password": "set" if password else "unusable"},
        reason=reason,
    )
    return locked


@transaction.atomic
def user_delete(*, user: User, actor: User | None, reason: str = "") -> None:
    """Delete a user without history (credentials, tokens and permission go with it), audited; every token
    of the user is tombstoned in `token:` after commit.

    Raises ValidationError when the user has trading instances or audit history (PROTECT): deactivate instead."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    digests = list(ApiToken.objects.filter(user=locked).values_list("digest", flat=True))
    audit_entry_create(
        actor=actor,
        action="user.delete",
        target=locked,
        before={"username": locked.username, "email": locked.email, "is_staff": locked.is_staff},
        reason=reason,
    )
    user_id = locked.pk
    try:
        with transaction.atomic():
            locked.delete()
    except ProtectedError:
        raise ValidationError("This user has trading or audit history: deactivate it instead.") from None
    _tombstone_tokens_after_commit(digests)
    transaction.on_commit(lambda: PERM.delete(str(user_id)))


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
    """Create a token; returns the row and the raw token, which exists nowhere else: show it once.

    After commit its resolution is cached (versioned by the user's updated_at), replacing any `unknown` marker a
    request with the same digest left, so a new token is never shadowed. The user row is locked so a concurrent
    user_update cannot commit between the read of its fields and this commit."""
    user = User.objects.select_for_update().get(pk=user.pk)
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
    # Read after the user lock: an instance deactivation (instance, then user locked) has committed by now.
    instance_active = instance is None or TradingInstance.objects.filter(pk=instance.pk, is_active=True).exists()
    resolution = cached_token_for(
        user, token_id=token.pk, kind=kind, instance_id=token.instance_id, instance_active=instance_active
    )
    _write_tokens_after_commit({token.digest: resolution.to_json()}, version=version_of(user.updated_at))
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
    _tombstone_tokens_after_commit([token.digest])
    return token


def api_token_touch(*, token_id: int, now: datetime) -> bool:
    """Record use: one conditional UPDATE, a no-op when the token was touched less than a minute ago."""
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_INTERVAL)
    return bool(ApiToken.objects.filter(stale, pk=token_id).update(last_used_at=now))


def api_token_touch_due(*, last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or last_used_at < now - TOUCH_INTERVAL


_RESTORE_SQL = """
UPDATE accounts_tradinginstance SET heartbeat_lost_at = NULL, last_heartbeat = GREATEST(last_heartbeat, %s)
WHERE id = ANY(%s) AND heartbeat_lost_at IS NOT NULL
RETURNING id
"""


def heartbeat_restore(*, instance_ids: list[int], now: datetime | None) -> list[int]:
    """End the silence of accounts the heartbeat watchdog marked silent (their bot was heard from at `now`; None:
    the watchdog, which persisted the time already): one conditional UPDATE, which also moves `last_heartbeat`
    forward; returns the ids it restored (an account already
    restored is not counted twice). Runs once per silence, never per request. One statement on its own: it holds
    account rows only while it runs and waits on nothing while holding them."""
    if not instance_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_RESTORE_SQL, [now, list(instance_ids)])
        restored = sorted(row[0] for row in cursor.fetchall())
    if len(restored) == 1:
        logger.info("heartbeat_restored", account_id=restored[0])
    elif restored:
        logger.info("heartbeat_restored", accounts=len(restored), first_account_ids=restored[:20])
    return restored


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


CREDENTIAL_FIELDS = ("broker", "label", "is_active")


def broker_credential_check_label(*, user_id: int, label: str, exclude_pk: int | None = None) -> None:
    """ValidationError when the user already has a credential with this label (forms call it too)."""
    taken = BrokerCredential.objects.filter(user_id=user_id, label=label).exclude(pk=exclude_pk).exists()
    if taken:
        raise ValidationError({"label": "This user already has a broker credential with this label."})


@transaction.atomic
def broker_credential_update(
    *, credential: BrokerCredential, actor: User | None, reason: str = "", **changes: Any
) -> BrokerCredential:
    """Change a credential's broker, label or active flag (audited, before/after). Its user never changes
    (instances of that user trade with it); the secrets change through `broker_credential_update_secrets`.

    Raises ValidationError for another field or a label the user already uses; nothing is written then."""
    _refuse_unknown(changes, CREDENTIAL_FIELDS)
    locked = BrokerCredential.objects.select_for_update().defer(*BrokerCredential.SECRET_FIELDS).get(pk=credential.pk)
    before = {field: getattr(locked, field) for field in changes}
    changed = [field for field, value in changes.items() if before[field] != value]
    if not changed:
        return locked
    if "label" in changed:
        broker_credential_check_label(user_id=locked.user_id, label=changes["label"], exclude_pk=locked.pk)
    for field in changed:
        setattr(locked, field, changes[field])
    locked.save(update_fields=[*changed, "updated_at"])
    audit_entry_create(
        actor=actor,
        action="broker_credential.update",
        target=locked,
        before={field: before[field] for field in changed},
        after={field: changes[field] for field in changed},
        reason=reason,
    )
    return locked


# ------------------------------------------------------------------------------------------------
# Trading instances (operator edits; the risk counters are never edited here)
# ------------------------------------------------------------------------------------------------
INSTANCE_OPERATOR_FIELDS = ("name", "status", "broker_credential", "starting_balance")


@transaction.atomic
def trading_instance_create(
    *,
    user: User,
    name: str,
    broker_credential: BrokerCredential | None = None,
    status: str = InstanceStatus.STOPPED,
    is_active: bool = True,
    starting_balance: Decimal = Decimal("0"),
    actor: User | None,
    reason: str = "",
) -> TradingInstance:
    """Create a trading instance (audited). It starts with equity, peaks, counters and heartbeats at zero/empty:
    its equity comes from its bot's first report, never from an operator.

    Raises ValidationError for another user's credential or a negative starting balance; nothing is written."""
    trading_instance_check_credential(user_id=user.pk, credential=broker_credential)
    if starting_balance < 0:
        raise ValidationError({"starting_balance": "The starting balance cannot be negative."})
    instance = TradingInstance.objects.create(
        user=user,
        name=name,
        broker_credential=broker_credential,
        status=status,
        is_active=is_active,
        starting_balance=starting_balance,
    )
    audit_entry_create(
        actor=actor,
        action="trading_instance.create",
        target=instance,
        after={
            "user_id": user.pk,
            "name": name,
            "broker_credential": instance.broker_credential_id,
            "status": status,
            "is_active": is_active,
            "starting_balance": starting_balance,
        },
        reason=reason,
    )
    return instance


def trading_instance_check_credential(*, user_id: int, credential: BrokerCredential | None) -> None:
    """ValidationError unless the credential (if any) belongs to the instance's user (forms call it too)."""
    if credential is not None and credential.user_id != user_id:
        raise ValidationError({"broker_credential": "This broker credential belongs to another user."})


def instance_tokens_recache(instance: TradingInstance) -> None:
    """After the instance's `is_active` changed in the open transaction (risk.services.activation): a bot token's
    cached resolution says whether its instance is active, and entries are versioned by the user's updated_at, so
    touch the user (locked after the instance, as everywhere) and re-cache its tokens after commit, replacing
    every older entry."""
    user = User.objects.select_for_update().get(pk=instance.user_id)
    user.save(update_fields=["updated_at"])
    user_tokens_recache(user)


@transaction.atomic
def trading_instance_update(
    *, instance: TradingInstance, actor: User | None, reason: str = "", **changes: Any
) -> TradingInstance:
    """Operator edit of name, status, broker credential or starting balance (audited). Risk counters, equity,
    heartbeats and activation are moved by the risk services and the bot's reports, never here (the starting
    balance only sets what a first equity report is measured against).

    Raises ValidationError for an unknown field, an invalid value or `is_active` (risk.services.activation
    changes it); nothing is written then."""
    _refuse_activation(changes)
    _refuse_unknown(changes, INSTANCE_OPERATOR_FIELDS)
    if changes.get("starting_balance", 0) < 0:
        raise ValidationError({"starting_balance": "The starting balance cannot be negative."})
    locked = TradingInstance.objects.select_for_update(no_key=True).get(pk=instance.pk)
    if "broker_credential" in changes:
        trading_instance_check_credential(user_id=locked.user_id, credential=changes["broker_credential"])
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
