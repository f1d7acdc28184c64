"""DRF authentication by `Authorization: Bearer <token>` (bot, operator and price-feed tokens).

Resolves to `(user, ApiPrincipal)`. Warm lookups cost no query: the resolution is cached in `token:<digest>`
(JSON, short TTL) together with the few user fields a request needs, and `request.user` is built from them
with every other field deferred (the superuser flag included: `has_perm` reads it from PostgreSQL). A miss (or
Redis unreachable) costs one SELECT, plus at most one conditional UPDATE of `last_used_at` a minute. Entries are
versioned by the user's updated_at (accounts.caching): after commit, revoking and deleting a user write tombstones,
and a user edit (accounts.services.user_update) rewrites the user's entries, which no stale reader can overwrite.
"""

import structlog
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts.caching import set_if_newer
from accounts.models import TokenKind, User
from accounts.selectors import (
    REVOKED,
    api_token_cached,
    api_token_get_by_digest,
    api_token_version,
    cached_token_from,
    light_user,
)
from accounts.services import api_token_touch, api_token_touch_due
from accounts.tokens import ApiPrincipal, CachedToken, looks_like_token, token_digest
from nija.cache import TOKEN

__all__ = ["ApiPrincipal", "BearerTokenAuthentication"]

INVALID = "Invalid or revoked token."


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>`; anything else is left to the next authentication class."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiPrincipal] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed bearer token header.")
        try:
            raw_token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(INVALID) from None
        if not looks_like_token(raw_token):
            raise AuthenticationFailed(INVALID)
        cached, user = self._resolve(token_digest(raw_token))
        self._check(cached)
        structlog.contextvars.bind_contextvars(
            user_id=cached.principal.user_id, account_id=cached.principal.instance_id
        )
        return user, cached.principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    def _resolve(self, digest: str) -> tuple[CachedToken, User]:
        cached = api_token_cached(digest=digest)
        if cached == REVOKED:
            raise AuthenticationFailed(INVALID)
        if cached is not None:
            return cached, light_user(cached)
        token = api_token_get_by_digest(digest=digest)
        if token is None or token.revoked_at is not None:
            raise AuthenticationFailed(INVALID)
        now = timezone.now()
        if api_token_touch_due(last_used_at=token.last_used_at, now=now):
            api_token_touch(token_id=token.pk, now=now)
        resolved = cached_token_from(token)
        set_if_newer(TOKEN, digest, resolved.to_json(), version=api_token_version(token))
        return resolved, token.user

    @staticmethod
    def _check(cached: CachedToken) -> None:
        if not cached.is_active:
            raise AuthenticationFailed("User inactive.")
        if cached.principal.kind == TokenKind.OPERATOR and not cached.is_staff:
            raise AuthenticationFailed(INVALID)
