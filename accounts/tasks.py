"""Celery tasks of the accounts app: retried cache evictions after a cache write failed past a commit.

Each takes ids, is idempotent (deleting an absent key is a no-op) and time-limited, and retries only Redis
errors, with exponential backoff. Evicting is enough: the next read refills the key from PostgreSQL.
"""

from celery import shared_task
from redis import RedisError

from accounts.caching import cache_evict
from nija.cache import PERM, TOKEN

PERMISSION_CACHE_EVICT = "accounts.permission_cache_evict"
TOKEN_CACHE_EVICT = "accounts.token_cache_evict"  # noqa: S105 - a task name
RETRY = {
    "autoretry_for": (RedisError,),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 10,
    "soft_time_limit": 10,
    "time_limit": 20,
    "ignore_result": True,
}


@shared_task(name=PERMISSION_CACHE_EVICT, **RETRY)
def permission_cache_evict(user_id: int) -> bool:
    """Delete `perm:<user_id>`; True when a key was deleted. Raises (and so retries) while Redis is unreachable."""
    return cache_evict(PERM, str(user_id))


@shared_task(name=TOKEN_CACHE_EVICT, **RETRY)
def token_cache_evict(digests: list[str]) -> int:
    """Delete `token:<digest>` for each digest (SHA-256 digests, never raw tokens); how many were deleted.
    Raises (and so retries) while Redis is unreachable."""
    return sum(cache_evict(TOKEN, digest) for digest in digests)
