"""Limiter throughput against a bare Redis INCR round trip, measured in the same run on the suite's Redis.

Run: `make bench`, or `.venv/bin/pytest tests/bench/bench_ratelimit.py -s -o addopts=""`.
The target is a ratio of at least 0.5: one round trip per check (EVALSHA), no extra ones. The two are timed
in interleaved slices so that load from other processes on the machine falls on both alike.
"""

import time
from collections.abc import Callable

from nija.ratelimit import rate_limit_hit

SLICES = 20
SLICE_CALLS = 1_000
TARGET_RATIO = 0.5


def _timed_slice(call: Callable[[int], object], offset: int) -> float:
    started = time.perf_counter()
    for i in range(offset, offset + SLICE_CALLS):
        call(i)
    return time.perf_counter() - started


def _interleaved_rates(calls: dict[str, Callable[[int], object]]) -> dict[str, float]:
    """Calls per second of each callable, timed slice by slice in turn."""
    for call in calls.values():  # warm up: connections, script cache
        _timed_slice(call, 0)
    elapsed = dict.fromkeys(calls, 0.0)
    for slice_number in range(SLICES):
        for name, call in calls.items():
            elapsed[name] += _timed_slice(call, slice_number * SLICE_CALLS)
    return {name: SLICES * SLICE_CALLS / seconds for name, seconds in elapsed.items()}


def _server_usec_per_call(redis_client, command: str) -> float:
    return float(redis_client.info("commandstats").get(f"cmdstat_{command}", {}).get("usec_per_call", 0.0))


def test_limiter_checks_per_second_against_a_bare_incr(redis_client):
    redis_client.config_resetstat()
    rates = _interleaved_rates(
        {
            "bare INCR round trip": lambda i: redis_client.incr("bench:incr"),
            # A big limit: every check trims, counts and adds (the set holds about a second of entries).
            "limiter, allowed, hot key": lambda i: rate_limit_hit("bench:allowed", 10**9, 1000),
            # A full window of 100: every check also reads the oldest entry for Retry-After.
            "limiter, denied": lambda i: rate_limit_hit("bench:denied", 100, 60_000),
            # 1,000 identities at 60 a minute each: what a busy API looks like.
            "limiter, 1,000 keys": lambda i: rate_limit_hit(f"bench:spread:{i % 1000}", 60, 60_000),
        }
    )
    incr = rates.pop("bare INCR round trip")

    print()
    incr_usec = _server_usec_per_call(redis_client, "incrby")  # redis-py sends INCR as INCRBY
    print(f"{'bare INCR round trip':28} {incr:9,.0f} /s   (in Redis: {incr_usec:.1f} us per call)")
    for name, rate in rates.items():
        ratio = rate / incr
        verdict = "ok" if ratio >= TARGET_RATIO else "BELOW TARGET"
        print(f"{name:28} {rate:9,.0f} /s   ratio {ratio:.2f} (target >= {TARGET_RATIO}) {verdict}")
    print(f"{'limiter EVALSHA in Redis':28} {_server_usec_per_call(redis_client, 'evalsha'):9.1f} us per call")
