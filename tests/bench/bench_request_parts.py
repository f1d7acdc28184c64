"""Two parts of every API request, each against the way it was done before, in process (`make bench`):

- rendering a mark (the market GET's answer) through the one `MarketPriceOutputSerializer` made at import
  (trading/api.py) against a new serializer per request, which deep-copies its declared fields;
- a Redis call's CPU with redis-py's reply parser from hiredis (requirements/base.txt) against its pure-Python one,
  on the same Redis: a GET of a mark and an EVALSHA of a script that reads two keys, as the token gate does.

Medians of 5 x ROUNDS calls; the CPU clock for Redis (a round trip's wait is not the parser's). It asserts only that
both ways answer the same; never a time.
"""

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import redis
from django.conf import settings
from redis._parsers import _RESP3Parser
from redis.utils import HIREDIS_AVAILABLE

from trading.api import MarketPriceOutputSerializer, _render
from trading.market import MarketPrice

ROUNDS = 5_000
TAG = "[bench_request_parts]"
GATE_LIKE = "return {redis.call('GET', KEYS[1]), redis.call('MGET', KEYS[1], KEYS[2])}"


def _per_call_us(call: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    samples = []
    for _ in range(5):
        started = clock()
        for _ in range(ROUNDS):
            call()
        samples.append((clock() - started) / ROUNDS * 1e6)
    return statistics.median(samples)


def test_rendering_a_mark_through_the_shared_serializer():
    mark = MarketPrice(
        symbol="BTC-USD", price=Decimal("50000.5"), bid=None, ask=Decimal("50001"), timestamp=datetime.now(UTC)
    )
    assert dict(MarketPriceOutputSerializer(mark).data) == _render(mark).data

    new_each_time = _per_call_us(lambda: MarketPriceOutputSerializer(mark).data)
    shared = _per_call_us(lambda: _render(mark))

    print(f"\n{TAG} a mark rendered, median of 5 x {ROUNDS}")
    print(f"{TAG}   a new serializer each time:        {new_each_time:6.1f} µs")
    print(f"{TAG}   the shared one (and its Response): {shared:6.1f} µs  ratio {shared / new_each_time:.2f}")


def test_redis_calls_with_hiredis_against_the_pure_python_parser(redis_client):
    assert HIREDIS_AVAILABLE, "requirements/base.txt installs hiredis; redis-py uses it when it is importable"
    url = settings.CACHES["default"]["LOCATION"]
    with_hiredis = redis.Redis.from_url(url)
    pure_python = redis.Redis.from_url(url, parser_class=_RESP3Parser)
    keys = ["bench:parts:mark", "bench:parts:missing"]
    with_hiredis.set(keys[0], '{"symbol": "BTC-USD", "price": "50000.00000000", "timestamp": "2026-01-01"}')
    sha = with_hiredis.script_load(GATE_LIKE)
    try:
        figures = {}
        for name, client in (("hiredis", with_hiredis), ("pure Python", pure_python)):
            assert client.evalsha(sha, 2, *keys) == with_hiredis.evalsha(sha, 2, *keys)
            figures[name] = (
                _per_call_us(lambda c=client: c.get(keys[0]), time.process_time),
                _per_call_us(lambda c=client: c.evalsha(sha, 2, *keys), time.process_time),
            )
    finally:
        with_hiredis.delete(*keys)

    (get_h, eval_h), (get_p, eval_p) = figures["hiredis"], figures["pure Python"]
    print(f"\n{TAG} CPU of a Redis call, median of 5 x {ROUNDS}")
    print(f"{TAG}   GET:     hiredis {get_h:6.1f} µs, pure Python {get_p:6.1f} µs  ratio {get_h / get_p:.2f}")
    print(f"{TAG}   EVALSHA: hiredis {eval_h:6.1f} µs, pure Python {eval_p:6.1f} µs  ratio {eval_h / eval_p:.2f}")
