"""Reads of the accounts app: trading permissions through the `perm:` cache, API tokens through `token:`.

Cache reads fail soft (nija.cache), so every read here falls back to PostgreSQL when Redis is unreachable.
Readers fill `perm:` and `token:` and writers refresh them after commit through one versioned write
(accounts.caching: set if absent or older), so a reader that loaded a row just before an edit committed can never
put the old value back over the new one, nor can a stalled writer.
"""

from dataclasses import asdict, dataclass
from decimal import Decimal

from django.db.models import QuerySet

from accounts.caching import set_if_newer, version_of
from accounts.models import ApiToken, BrokerCredential, User, UserPermission
from accounts.tiers import permission_defaults
from accounts.tokens import ApiPrincipal, CachedToken
from nija.cache import PERM, TOKEN


@dataclass(frozen=True)
class UserPermissionData:
    """A user's trading limits as plain values (what the risk engine reads)."""

    user_id: int
    can_trade: bool
    max_position_size: Decimal
    max_daily_loss: Decimal
    max_open_positions: int
    allowed_symbols: tuple[str, ...]

    def allows_symbol(self, symbol: str) -> bool:
        """Every symbol when the list is empty, else only the listed ones (canonical BASE-QUOTE)."""
        return not self.allowed_symbols or symbol in self.allowed_symbols

    def to_json(self) -> dict:
        data = asdict(self)
        data["max_position_size"] = str(self.max_position_size)
        data["max_daily_loss"] = str(self.max_daily_loss)
        data["allowed_symbols"] = list(self.allowed_symbols)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "UserPermissionData":
        return cls(
            user_id=int(data["user_id"]),
            can_trade=bool(data["can_trade"]),
            max_position_size=Decimal(data["max_position_size"]),
            max_daily_loss=Decimal(data["max_daily_loss"]),
            max_open_positions=int(data["max_open_positions"]),
            allowed_symbols=tuple(data["allowed_symbols"]),
        )


def user_permission_data(*, user_id: int, values: dict) -> UserPermissionData:
    return UserPermissionData(
        user_id=user_id,
        can_trade=values["can_trade"],
        max_position_size=values["max_position_size"],
        max_daily_loss=values["max_daily_loss"],
        max_open_positions=values["max_open_positions"],
        allowed_symbols=tuple(values["allowed_symbols"]),
    )


def _user_permission_from_db(user_id: int) -> tuple[UserPermissionData, int]:
    """The limits and their cache version (the row's updated_at; 0 for the tier's defaults, older than any row)."""
    fields = ("can_trade", "max_position_size", "max_daily_loss", "max_open_positions", "allowed_symbols")
    row = UserPermission.objects.filter(user_id=user_id).values(*fields, "updated_at").first()
    if row is None:
        # No row yet (a user created outside accounts.services): the tier's defaults apply.
        tier = User.objects.filter(pk=user_id).values_list("subscription_tier", flat=True).first()
        if tier is None:
            raise User.DoesNotExist(f"user {user_id} does not exist")
        return user_permission_data(user_id=user_id, values=permission_defaults(tier)), 0
    return user_permission_data(user_id=user_id, values=row), version_of(row["updated_at"])


def user_permission_key(*, user_id: int) -> str:
    """The Redis key `user_permission_get` reads first (for a view to read it ahead, nija.cache.prefetched_reads)."""
    return PERM.raw_key(str(user_id))


def user_permission_get(*, user_id: int) -> UserPermissionData:
    """The user's limits: from `perm:<user_id>` when cached, else PostgreSQL, then cached unless a newer
    version is already there (accounts.caching: a stalled reader never puts an older value back)."""
    cached = PERM.get(str(user_id))
    if cached is not None:
        return UserPermissionData.from_json(cached)
    data, version = _user_permission_from_db(user_id)
    set_if_newer(PERM, str(user_id), data.to_json(), version=version)
    return data


# ------------------------------------------------------------------------------------------------
# API tokens
# ------------------------------------------------------------------------------------------------
REVOKED = "revoked"
UNKNOWN = "unknown"


def api_token_version(token: ApiToken) -> int:
    """The cache version of a token's resolution: its user's updated_at (accounts.caching)."""
    return version_of(token.user.updated_at)


def api_token_cached(*, digest: str) -> CachedToken | str | None:
    """The cached resolution of a token: a CachedToken, REVOKED (a tombstone), UNKNOWN (PostgreSQL had no such
    digest a moment ago) or None (not cached)."""
    return api_token_from_entry(TOKEN.get(digest))


def api_token_from_entry(data: dict | None) -> CachedToken | str | None:
    """What a token's cache entry (its JSON object; None for none) says: as `api_token_cached`."""
    if data is None:
        return None
    if data.get(REVOKED):
        return REVOKED
    if data.get(UNKNOWN):
        return UNKNOWN
    if "instance_active" not in data:
        return None  # written before entries said whether the instance is active: read PostgreSQL instead
    return CachedToken.from_json(data)


def api_token_get_by_digest(*, digest: str) -> ApiToken | None:
    """The token row with its user and instance (one query), or None."""
    return ApiToken.objects.select_related("user", "instance").filter(digest=digest).first()


def cached_token_from(token: ApiToken) -> CachedToken:
    instance_active = token.instance.is_active if token.instance_id is not None else True
    return cached_token_for(
        token.user, token_id=token.pk, kind=token.kind, instance_id=token.instance_id, instance_active=instance_active
    )


def cached_token_for(
    user: User, *, token_id: int, kind: str, instance_id: int | None, instance_active: bool
) -> CachedToken:
    """The cached resolution of one token of `user` (the user fields as they are on `user`)."""
    principal = ApiPrincipal(
        token_id=token_id, kind=kind, user_id=user.pk, instance_id=instance_id, tier=user.subscription_tier
    )
    return CachedToken(principal, user.username, user.is_staff, user.is_active, instance_active)


def light_user(cached: CachedToken) -> User:
    """A User built from the cache without a query: the cached fields are set, any other field is deferred
    (loaded from PostgreSQL on first access, so it is never silently wrong). `is_superuser` is never cached:
    `has_perm` reads it from PostgreSQL, so a superuser flag removed a moment ago is never trusted."""
    known = {
        "id": cached.principal.user_id,
        "username": cached.username,
        "is_staff": cached.is_staff,
        "is_active": cached.is_active,
        "subscription_tier": cached.principal.tier,
    }
    # Model.from_db takes the values in concrete-field order.
    names = [field.attname for field in User._meta.concrete_fields if field.attname in known]
    return User.from_db("default", names, [known[name] for name in names])


# ------------------------------------------------------------------------------------------------
# Broker credentials
# ------------------------------------------------------------------------------------------------
def broker_credential_list_masked() -> QuerySet[BrokerCredential]:
    """Credentials for display (broker, label, ****last4, owner): the encrypted secrets are deferred, so loading
    a row decrypts nothing. Reading a secret from such a row costs one query per field: load it unmasked."""
    return BrokerCredential.objects.defer(*BrokerCredential.SECRET_FIELDS)
