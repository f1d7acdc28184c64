"""API token primitives: generation, hashing, the resolved principal and its cached form.

A raw token is 32 random bytes (`secrets.token_urlsafe(32)`, 43 characters), shown once; only its SHA-256
hex digest is stored (a salted slow hash is pointless for 256 random bits and would cost ~0.5 s a request).
"""

import hashlib
import re
import secrets
from dataclasses import asdict, dataclass

PREFIX_LENGTH = 8
_RAW_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class ApiPrincipal:
    """What a bearer token resolved to; DRF's `request.auth` for token-authenticated requests."""

    token_id: int
    kind: str
    user_id: int
    instance_id: int | None
    tier: str


@dataclass(frozen=True)
class CachedToken:
    """The cached resolution of a token (nija.cache.TOKEN, JSON): the principal and what request.user needs, and
    whether a bot token's instance is active (True for tokens bound to no instance).

    Never the superuser flag: `has_perm` must read it from PostgreSQL (accounts.selectors.light_user)."""

    principal: ApiPrincipal
    username: str
    is_staff: bool
    is_active: bool
    instance_active: bool = True

    @property
    def account_active(self) -> bool:
        """The user, and a bot token's instance, are active."""
        return self.is_active and self.instance_active

    def to_json(self) -> dict:
        return {
            **asdict(self.principal),
            "username": self.username,
            "is_staff": self.is_staff,
            "is_active": self.is_active,
            "instance_active": self.instance_active,
        }

    @classmethod
    def from_json(cls, data: dict) -> "CachedToken":
        principal = ApiPrincipal(
            token_id=int(data["token_id"]),
            kind=str(data["kind"]),
            user_id=int(data["user_id"]),
            instance_id=None if data["instance_id"] is None else int(data["instance_id"]),
            tier=str(data["tier"]),
        )
        return cls(
            principal,
            str(data["username"]),
            bool(data["is_staff"]),
            bool(data["is_active"]),
            bool(data["instance_active"]),
        )


def generate_raw_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(raw_token: str) -> str:
    """SHA-256 hex digest of the raw token: the only form ever stored or used as a cache key."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


def looks_like_token(raw_token: str) -> bool:
    """Cheap shape check so malformed input never reaches Redis or PostgreSQL."""
    return bool(_RAW_TOKEN.match(raw_token))
