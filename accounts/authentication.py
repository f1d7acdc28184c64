"""DRF authentication by `Authorization: Bearer <token>` (bot, operator and price-feed tokens).

Resolves to `(user, ApiPrincipal)`. Warm lookups cost no query: the resolution is cached in `token:<digest>`
(JSON, short TTL) together with the few user fields a request needs, and `request.user` is built from them
with every other field deferred (the superuser flag included: `has_perm` reads it from PostgreSQL). A token this
process has seen costs one Redis round trip for its entry, its rate-limit count and its bot's heartbeat together
(accounts.token_gate). A miss (or Redis unreachable) costs one SELECT, plus at most one conditional UPDATE of
`last_used_at` a minute. A bot's request is also its heartbeat (accounts.liveness): Redis only, never a PostgreSQL
write, except the one request that ends a silence the watchdog marked. Entries are versioned by the user's
updated_at (accounts.caching): after commit, revoking and deleting a user write tombstones, and a user edit
(accounts.services.user_update) rewrites the user's entries, which no stale reader can overwrite.

Unknown digests are cached for UNKNOWN_TOKEN_TTL seconds (`{"unknown": true}`, version 0, so the entry
api_token_create writes after commit always replaces it), and failed authentications are counted per client
address (`nija.ratelimit`, scope `auth_failures`): past AUTH_FAILURE_LIMIT a minute the answer is 429 and a cache
miss no longer reaches PostgreSQL.
"""

import logging
import time

import structlog
from django.db import DatabaseError
from django.utils import timezone
from redis import RedisError
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import APIException, AuthenticationFailed, Throttled
from rest_framework.request import Request

from accounts.caching import TOMBSTONE_VERSION, set_if_newer
from accounts.liveness import heartbeat_due, heartbeat_record, heartbeat_undue
from accounts.models import TokenKind, User
from accounts.selectors import (
    REVOKED,
    UNKNOWN,
    api_token_from_entry,
    api_token_get_by_digest,
    api_token_version,
    cached_token_from,
    light_user,
)
from accounts.services import api_token_touch, api_token_touch_due, heartbeat_restore
from accounts.token_gate import GateReading, Remembered, entry_data, remember, remembered, token_gate
from accounts.tokens import ApiPrincipal, CachedToken, looks_like_token, token_digest
from nija.api.throttling import (
    RateWindow,
    counted_by_sliding_window,
    rate_decision_prefetch,
    rate_window,
    throttle_scope_of,
    tier_of,
    token_identity,
)
from nija.cache import RATE, TOKEN, prefetched_attach
from nija.client_ip import client_ip
from nija.ratelimit import rate_limit_hit, record_fail_open

__all__ = ["ApiPrincipal", "BearerTokenAuthentication"]

logger = logging.getLogger(__name__)

INVALID = "Invalid or revoked token."
# Failed bearer authentications per client address (nija.client_ip, as every limiter counts): past the limit
# the answer is 429 and unknown tokens are no longer looked up in PostgreSQL (DRF throttles run after
# authentication, so they never see these requests).
AUTH_FAILURE_SCOPE = "auth_failures"
AUTH_FAILURE_LIMIT = 30
AUTH_FAILURE_WINDOW_MS = 60_000
# A digest PostgreSQL does not know is cached this long, so repeating it costs no query.
UNKNOWN_TOKEN_TTL = 30
REVOKED_TOKEN_TTL = 300


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>`; anything else is left to the next authentication class."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiPrincipal] | None:
        try:
            return self._authenticate(request)
        except AuthenticationFailed:
            _count_failure(_client_ident(request))  # 429 instead past the limit
            raise

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    def _authenticate(self, request: Request) -> tuple[User, ApiPrincipal] | None:
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
        cached, user, was_lost = self._resolve(token_digest(raw_token), request)
        self._check(cached, request)
        _heartbeat(cached.principal, was_lost)
        structlog.contextvars.bind_contextvars(
            user_id=cached.principal.user_id, account_id=cached.principal.instance_id
        )
        return user, cached.principal

    def _resolve(self, digest: str, request: Request) -> tuple[CachedToken, User, bool | None]:
        """The token's resolution, its user, and whether the round trip recorded the bot's heartbeat (None: not
        recorded; else whether the account was marked lost). A warm token costs one round trip (accounts.token_gate)
        that also counts the request for the throttle; a cold one falls back to PostgreSQL."""
        memo = remembered(digest)
        user = light_user(memo.cached) if memo is not None else None
        window, heartbeat, prefetch = self._plan(memo, user, request)
        try:
            reading = token_gate(
                digest, expected=memo.entry if memo else None, window=window, heartbeat=heartbeat, prefetch=prefetch
            )
        except RedisError:
            logger.warning("cache_unavailable", extra={"namespace": TOKEN.name, "op": "get"}, exc_info=True)
            reading = GateReading(entry=None, matched=False)
        if reading.matched and memo is not None and user is not None:
            if window is not None and reading.decision is not None:
                rate_decision_prefetch(request._request, window, reading.decision)
            prefetched_attach(request._request, reading.prefetched)
            return memo.cached, user, reading.was_lost
        if heartbeat is not None:
            heartbeat_undue(heartbeat[0])  # not recorded: the usual write below
        data = entry_data(reading.entry) if reading.entry is not None else None
        cached = api_token_from_entry(data)
        if cached in (REVOKED, UNKNOWN):
            raise AuthenticationFailed(INVALID)
        if isinstance(cached, CachedToken):
            remember(digest, reading.entry, cached)  # type: ignore[arg-type] - an entry was read
            return cached, light_user(cached), None
        return (*self._resolve_from_database(digest, request), None)

    def _plan(
        self, memo: Remembered | None, user: User | None, request: Request
    ) -> tuple[RateWindow | None, tuple[int, int] | None, list[str]]:
        """What the round trip does besides reading the entry, should it still be the remembered one: count the
        request in the window the throttle would (if the view is counted), record a bot's heartbeat (if due) and
        read the cache entries the view will read (its `gate_prefetch(principal)`, raw keys). Nothing for a token
        the checks below would refuse, so a refused request is neither counted nor a heartbeat, as before."""
        if memo is None or user is None or self._refusal(memo.cached, request) is not None:
            return None, None, []
        principal = memo.cached.principal
        view = (getattr(request, "parser_context", None) or {}).get("view")
        window = None
        if counted_by_sliding_window(view):
            window = rate_window(throttle_scope_of(view), tier_of(user, principal), token_identity(principal.token_id))
        heartbeat = None
        if principal.kind == TokenKind.BOT and principal.instance_id is not None:
            second = int(time.time())
            if heartbeat_due(principal.instance_id, second):
                heartbeat = (principal.instance_id, second)
        prefetch = getattr(view, "gate_prefetch", None)
        return window, heartbeat, list(prefetch(principal)) if prefetch is not None else []

    def _resolve_from_database(self, digest: str, request: Request) -> tuple[CachedToken, User]:
        _refuse_if_blocked(_client_ident(request))  # no SELECT for an address past its failure limit
        token = api_token_get_by_digest(digest=digest)
        if token is None:
            set_if_newer(TOKEN, digest, {UNKNOWN: True}, version=0, ttl=UNKNOWN_TOKEN_TTL)
            raise AuthenticationFailed(INVALID)
        if token.revoked_at is not None:
            set_if_newer(TOKEN, digest, {REVOKED: True}, version=TOMBSTONE_VERSION, ttl=REVOKED_TOKEN_TTL)
            raise AuthenticationFailed(INVALID)
        now = timezone.now()
        if api_token_touch_due(last_used_at=token.last_used_at, now=now):
            api_token_touch(token_id=token.pk, now=now)
        resolved = cached_token_from(token)
        set_if_newer(TOKEN, digest, resolved.to_json(), version=api_token_version(token))
        return resolved, token.user

    @classmethod
    def _check(cls, cached: CachedToken, request: Request) -> None:
        refusal = cls._refusal(cached, request)
        if refusal is not None:
            raise refusal

    @staticmethod
    def _refusal(cached: CachedToken, request: Request) -> APIException | None:
        """A deactivated account's (or user's) bot token reaches only the views that accept it (fills and closes
        of what it holds): anything else is 403 `account_inactive`, a clear answer rather than a failed login.
        Any other token of an inactive user fails authentication."""
        if cached.principal.kind == TokenKind.BOT and not cached.account_active:
            # Imported here: DRF loads this module while nija.api.errors (which permissions imports) is loading.
            from accounts.permissions import AccountInactive, allows_inactive_account

            if not allows_inactive_account((getattr(request, "parser_context", None) or {}).get("view")):
                return AccountInactive()
            return None
        if not cached.is_active:
            return AuthenticationFailed("User inactive.")
        if cached.principal.kind == TokenKind.OPERATOR and not cached.is_staff:
            return AuthenticationFailed(INVALID)
        return None


def _heartbeat(principal: ApiPrincipal, was_lost: bool | None) -> None:
    """A bot's request is its heartbeat (accounts.liveness: Redis, at most one write a second, no query), recorded
    here unless the token's round trip already did (`was_lost` is then what it found). The one request that ends a
    silence the watchdog marked restores the account (one UPDATE per silence); if PostgreSQL fails there, the
    watchdog's next run restores it instead."""
    if principal.kind != TokenKind.BOT or principal.instance_id is None:
        return
    if was_lost is None:
        was_lost = heartbeat_record(principal.instance_id)
    if not was_lost:
        return
    try:
        heartbeat_restore(instance_ids=[principal.instance_id], now=timezone.now())
    except DatabaseError:
        logger.warning("heartbeat_restore_deferred", extra={"account_id": principal.instance_id}, exc_info=True)


def _client_ident(request: Request) -> str:
    return client_ip(request)


def _blocked_key(ident: str) -> str:
    return f"{AUTH_FAILURE_SCOPE}:blocked:{ident}"


def _count_failure(ident: str) -> None:
    """Count one failed authentication of `ident`; past the limit, mark it blocked for the rest of the window
    and raise Throttled (429, Retry-After). Redis unreachable: not counted (logged), the 401 stands."""
    try:
        decision = rate_limit_hit(f"{AUTH_FAILURE_SCOPE}:ip:{ident}", AUTH_FAILURE_LIMIT, AUTH_FAILURE_WINDOW_MS)
    except RedisError:
        record_fail_open(f"{AUTH_FAILURE_SCOPE}:ip:{ident}")
        return
    if not decision.allowed:
        RATE.set(_blocked_key(ident), True, ttl=decision.retry_after_seconds)
        logger.warning("auth_failures_limited", extra={"client": ident})
        raise Throttled(wait=decision.retry_after_seconds)


def _refuse_if_blocked(ident: str) -> None:
    if RATE.get(_blocked_key(ident)):
        raise Throttled(wait=AUTH_FAILURE_WINDOW_MS // 1000)
