"""Whether the credentials an open event stream was let in with still stand: the check the events process's lease
keeper runs over all its streams every few seconds (nija.stream_leases), so a stream does not outlive the right to
read it. Credentials are written `token:<api token id>` or `session:<session key>` (monitoring.stream).
"""

from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.db import connections
from django.db.models import Q
from django.utils.crypto import constant_time_compare

from accounts.models import ApiToken, TokenKind, User

TOKEN_CREDENTIAL = "token:"  # noqa: S105 - a prefix, not a secret
SESSION_CREDENTIAL = "session:"


def credentials_fallen(credentials: set[str]) -> set[str]:
    """Of open streams' credentials, those that no longer let their reader in (registered with the lease keeper,
    which asks every few seconds from a worker thread): a token revoked, its user deactivated, an operator token's
    user no longer staff, a bot token's account deactivated; a session logged out, expired, or whose user is no
    longer an active staff member or changed password. One query for every token; a session read and a user
    query per session. This thread's connection is closed afterwards: streams hold none."""
    try:
        token_ids = {int(c.removeprefix(TOKEN_CREDENTIAL)) for c in credentials if c.startswith(TOKEN_CREDENTIAL)}
        standing = ApiToken.objects.filter(pk__in=token_ids, revoked_at__isnull=True, user__is_active=True).filter(
            Q(kind=TokenKind.OPERATOR, user__is_staff=True) | Q(kind=TokenKind.BOT, instance__is_active=True)
        )
        fallen = {f"{TOKEN_CREDENTIAL}{pk}" for pk in token_ids - set(standing.values_list("pk", flat=True))}
        sessions = {c for c in credentials if c.startswith(SESSION_CREDENTIAL)}
        return fallen | {c for c in sessions if not _session_stands(c.removeprefix(SESSION_CREDENTIAL))}
    finally:
        connections.close_all()


def _session_stands(session_key: str) -> bool:
    """The session still logs an active staff member in (Django's own test: its user and password hash)."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = User.objects.filter(pk=session.get(SESSION_KEY), is_active=True, is_staff=True).first()
    if user is None:
        return False
    given = session.get(HASH_SESSION_KEY) or ""
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return any(constant_time_compare(given, expected) for expected in hashes)
