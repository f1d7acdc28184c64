"""Limiter throughput against a bare Redis INCR round trip, measured in the same run on the suite's Redis.

Run: `make bench`, or `.venv/bin/pytest tests/bench/bench_ratelimit.py -s -o addopts=""`.
The target is a ratio of at least 0.5: one round trip per check (EVALSHA), no extra ones.
"""

import time
from collections.abc import Callable

from nija.ratelimit import rate_limit_hit

CALLS = 20_000
WARMUP = 1_000
TARGET_RATIO = 0.5


def _per_second(call: Callable[[int], object]) -> float:
    for i in range(WARMUP):
        call(i)
    started = time.perf_counter()
    for i in range(CALLS):
        call(i)
    return CALLS / (time.perf_counter() - started)


def test_limiter_checks_per_second_against_a_bare_incr(redis_client):
    incr = _per_second(lambda i: redis_client.incr("bench:incr"))
    # Allowed path: a big limit, so every check trims, counts and adds (the set holds ~1 s of entries).
    allowed = _per_second(lambda i: rate_limit_hit("bench:allowed", 10**9, 1000))
    # Denied path: a full window of 100, so every check also reads the oldest entry for Retry-After.
    denied = _per_second(lambda i: rate_limit_hit("bench:denied", 100, 60_000))
    # Spread: 1,000 identities, 60 per minute each (what a busy API looks like).
    spread = _per_second(lambda i: rate_limit_hit(f"bench:spread:{i % 1000}", 60, 60_000))

    print()
    print(f"bare INCR round trip        {incr:10,.0f} /s")
    for name, rate in (
        ("allowed (one hot key)", allowed),
        ("denied (full window)", denied),
        ("spread (1,000 keys)", spread),
    ):
        ratio = rate / incr
        verdict = "ok" if ratio >= TARGET_RATIO else "BELOW TARGET"
        print(f"limiter {name:21} {rate:10,.0f} /s   ratio {ratio:.2f} (target >= {TARGET_RATIO}) {verdict}")

    assert min(allowed, denied, spread) / incr >= TARGET_RATIO
