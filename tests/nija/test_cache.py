"""nija.cache against the suite's real Redis: key layout, TTLs, SCAN clearing, JSON only, failing soft; sessions."""

import json
import pickle
import socket
import threading
import time

import pytest
from django.core.cache import cache
from redis import Redis

from nija.cache import (
    BALANCE,
    DASH,
    MARKET,
    POSITION,
    RATE,
    SESSION,
    Namespace,
    make_key,
    prefetched_reads,
    raw_client,
)
from tests.accounts.factories import OperatorFactory
from tests.redis_round_trips import redis_round_trips

UNPICKLED: list[str] = []


def _record_unpickling(marker: str) -> str:
    UNPICKLED.append(marker)
    return marker


class Payload:
    """Unpickling this calls `_record_unpickling`: the proof that pickle was (or was never) loaded."""

    def __reduce__(self):
        return (_record_unpickling, ("unpickled",))


def _dead_redis_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def dead_redis(settings):
    """Point the cache at a port nothing listens on (connection refused)."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": _dead_redis_url()}}


def test_keys_are_laid_out_as_nija_namespace_key_with_the_namespace_ttl(redis_client):
    assert MARKET.set("BTC-USD", {"price": "100.5"}) is True

    # The recent-log stream (nija:logs:recent) is written by a background thread whenever it catches up: not ours.
    assert [key for key in redis_client.keys("*") if not key.startswith(b"nija:logs:")] == [b"nija:market:BTC-USD"]
    assert json.loads(redis_client.get("nija:market:BTC-USD")) == {"price": "100.5"}
    assert 59_000 < redis_client.pttl("nija:market:BTC-USD") <= 60_000
    assert MARKET.get("BTC-USD") == {"price": "100.5"}
    assert MARKET.raw_key("BTC-USD") == "nija:market:BTC-USD"


def test_a_version_other_than_1_keeps_its_segment():
    assert make_key("perm:7", "nija", 1) == "nija:perm:7"
    assert make_key("perm:7", "nija", 2) == "nija:2:perm:7"


def test_an_explicit_ttl_is_honoured_and_the_value_expires(redis_client):
    POSITION.set("42", {"qty": "1"}, ttl=1)
    assert POSITION.get("42") == {"qty": "1"}
    assert POSITION.exists("42") is True

    time.sleep(1.1)

    assert POSITION.get("42") is None
    assert POSITION.get("42", default="miss") == "miss"
    assert POSITION.exists("42") is False
    assert redis_client.exists("nija:position:42") == 0


def test_a_namespace_without_default_ttl_stores_without_expiry(redis_client):
    RATE.set("bounded", [1, 2])
    assert redis_client.pttl("nija:rate:bounded") == -1


@pytest.mark.parametrize("ttl", [0, -5])
def test_a_non_positive_ttl_is_refused_and_nothing_is_written(redis_client, ttl):
    with pytest.raises(ValueError, match="ttl must be positive"):
        MARKET.set("ETH-USD", {"price": "1"}, ttl=ttl)
    assert redis_client.dbsize() == 0


def test_delete_reports_whether_a_key_was_there(redis_client):
    BALANCE.set("9", {"cash": "10"})
    assert BALANCE.delete("9") is True
    assert BALANCE.delete("9") is False
    assert redis_client.dbsize() == 0


def _keys(redis_client, pattern: str) -> set[bytes]:
    """The distinct keys matching `pattern`: SCAN may return a key more than once (while Redis resizes its table,
    as after a mass delete), so a count of its answers can exceed the keys there are."""
    return set(redis_client.scan_iter(match=pattern, count=1000))


@pytest.mark.slow
def test_clear_deletes_25000_keys_with_scan_and_returns_the_true_count(redis_client):
    """Counted by pattern, not with DBSIZE: a background writer of an earlier test (the log stream's) may add its
    own key to this Redis at any moment."""
    pipe = redis_client.pipeline(transaction=False)
    for i in range(25_000):
        pipe.set(POSITION.raw_key(str(i)), "{}", ex=600)
    for i in range(100):
        pipe.set(BALANCE.raw_key(str(i)), "{}", ex=600)
    pipe.set("nija:positions:lookalike", "{}")  # another namespace that shares the prefix text
    pipe.set("celery-task-meta-1", "{}")  # not ours at all
    pipe.execute()
    assert len(_keys(redis_client, "nija:position:*")) == 25_000

    assert POSITION.clear() == 25_000

    assert _keys(redis_client, "nija:position:*") == set()
    assert len(_keys(redis_client, "nija:balance:*")) == 100
    assert redis_client.exists("nija:positions:lookalike", "celery-task-meta-1") == 2
    assert POSITION.clear() == 0


def test_clear_in_small_batches_counts_each_key_once(redis_client):
    for i in range(103):
        DASH.set(str(i), i)
    assert DASH.clear(batch_size=7) == 103
    assert redis_client.dbsize() == 0


def test_clear_escapes_glob_characters_in_the_namespace_name(redis_client):
    odd = Namespace("we*rd", default_ttl=60)
    odd.set("a", 1)
    Namespace("weXrd", default_ttl=60).set("b", 2)
    assert odd.clear() == 1
    assert redis_client.keys("*") == [b"nija:weXrd:b"]


def test_a_pickled_payload_is_never_unpickled_and_reads_as_a_miss(redis_client):
    UNPICKLED.clear()
    redis_client.set("nija:market:BTC-USD", pickle.dumps(Payload()))

    assert MARKET.get("BTC-USD") is None
    assert MARKET.get("BTC-USD", default="miss") == "miss"
    with pytest.raises(ValueError):  # Django's cache API itself refuses it too: JSON only
        cache.get("market:BTC-USD")

    assert UNPICKLED == []
    # The control: the same bytes do run code when unpickled, so the test above could fail.
    pickle.loads(redis_client.get("nija:market:BTC-USD"))  # noqa: S301 - proving the payload is live
    assert UNPICKLED == ["unpickled"]


# ---------------------------------------------------------------------------------------------- reads carried ahead
def test_a_key_read_ahead_is_answered_from_it_once_without_a_round_trip(redis_client):
    MARKET.set("BTC-USD", {"price": "1"})
    read_ahead = {MARKET.raw_key("BTC-USD"): redis_client.get("nija:market:BTC-USD")}
    MARKET.set("BTC-USD", {"price": "2"})  # written after the read ahead

    with prefetched_reads(read_ahead), redis_round_trips() as trips:
        first = MARKET.get("BTC-USD")
        assert trips == [0]
        second = MARKET.get("BTC-USD")  # read once: a second read asks Redis
        assert trips == [1]

    assert first == {"price": "1"}
    assert second == {"price": "2"}


def test_a_key_read_ahead_as_missing_is_a_miss_and_other_keys_ask_redis(redis_client):
    MARKET.set("ETH-USD", {"price": "3"})

    with prefetched_reads({MARKET.raw_key("BTC-USD"): None}), redis_round_trips() as trips:
        assert MARKET.get("BTC-USD", default="miss") == "miss"
        assert MARKET.get("ETH-USD") == {"price": "3"}

    assert trips == [1]


def test_a_key_read_ahead_that_is_not_json_reads_as_a_miss(redis_client):
    UNPICKLED.clear()
    with prefetched_reads({MARKET.raw_key("BTC-USD"): pickle.dumps(Payload())}):
        assert MARKET.get("BTC-USD", default="miss") == "miss"
    assert UNPICKLED == []


def test_outside_the_block_nothing_is_read_ahead(redis_client):
    with prefetched_reads({MARKET.raw_key("BTC-USD"): b'{"price": "1"}'}):
        pass
    assert MARKET.get("BTC-USD") is None  # Redis has no such key


def test_non_json_values_are_refused_on_write(redis_client):
    with pytest.raises(TypeError):
        MARKET.set("BTC-USD", Payload())
    assert redis_client.dbsize() == 0


def test_with_redis_unreachable_reads_miss_and_writes_report_false_quickly(dead_redis):
    started = time.monotonic()
    assert MARKET.get("BTC-USD", default="miss") == "miss"
    assert MARKET.set("BTC-USD", {"price": "1"}) is False
    assert MARKET.delete("BTC-USD") is False
    assert MARKET.exists("BTC-USD") is False
    assert time.monotonic() - started < 2.0


@pytest.mark.django_db
def test_sessions_are_cached_under_the_session_namespace(client, redis_client):
    client.force_login(OperatorFactory())
    session_key = client.cookies["sessionid"].value

    assert redis_client.exists(SESSION.raw_key(session_key)) == 1
    assert SESSION.get(session_key)["_auth_user_id"]
    # A short TTL, not the session's two weeks: PostgreSQL is the record (tests/nija/test_sessions.py).
    assert 290 < redis_client.ttl(SESSION.raw_key(session_key)) <= 300


@pytest.mark.django_db
def test_a_redis_flush_logs_nobody_out(client, redis_client):
    client.force_login(OperatorFactory())
    redis_client.flushdb()

    assert client.get("/admin/").status_code == 200
    # The session was read back from PostgreSQL and cached again.
    assert redis_client.exists(SESSION.raw_key(client.cookies["sessionid"].value)) == 1


@pytest.mark.django_db
def test_with_redis_unreachable_sessions_fall_back_to_postgresql(client, redis_client, settings):
    client.force_login(OperatorFactory())
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": _dead_redis_url()}}

    assert client.get("/admin/").status_code == 200


POOL_THREADS = 80
POOL_SIZE = 10


def _pool_of(settings, size: int, db: int, **pool_kwargs) -> Redis:
    """The cache with a pool of `size` on database `db`, from the project's pool settings otherwise.

    django-redis keeps one pool per URL and process: each caller uses a database number no other test uses, so
    its pool is built from these settings.
    """
    default = settings.CACHES["default"]
    kwargs = {**default["OPTIONS"]["CONNECTION_POOL_KWARGS"], "max_connections": size, **pool_kwargs}
    options = {**default["OPTIONS"], "CONNECTION_POOL_KWARGS": kwargs}
    location = default["LOCATION"].rsplit("/", 1)[0] + f"/{db}"
    settings.CACHES = {"default": {**default, "LOCATION": location, "OPTIONS": options}}
    raw = raw_client()
    raw.flushdb()
    return raw


@pytest.fixture
def small_pool(settings, redis_client):
    raw = _pool_of(settings, POOL_SIZE, db=2)
    yield raw
    raw.flushdb()
    raw.connection_pool.disconnect()


def test_80_threads_reading_at_once_through_a_pool_of_10_all_succeed(small_pool):
    value = {"blob": "x" * 200_000}  # big enough that reads overlap
    cache.set("dash:big", value, timeout=60)
    barrier = threading.Barrier(POOL_THREADS)
    results: list = []
    errors: list = []

    def reader() -> None:
        barrier.wait()
        try:
            for _ in range(5):
                results.append(cache.get("dash:big") == value)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever a read raised
            errors.append(repr(exc))

    threads = [threading.Thread(target=reader) for _ in range(POOL_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert results == [True] * POOL_THREADS * 5
    assert type(small_pool.connection_pool).__name__ == "BlockingConnectionPool"
    assert len(small_pool.connection_pool._connections) <= POOL_SIZE


def test_with_every_connection_taken_a_read_waits_the_pool_timeout_then_misses(settings, redis_client):
    raw = _pool_of(settings, 1, db=3, timeout=0.3)
    held = raw.connection_pool.get_connection()
    try:
        started = time.monotonic()
        assert DASH.get("anything", default="miss") == "miss"  # fail soft: the pool's error reads as a miss
        waited = time.monotonic() - started
    finally:
        raw.connection_pool.release(held)
        raw.connection_pool.disconnect()

    assert 0.3 <= waited < 1.0
    assert DASH.set("anything", 1) is True  # the connection is back: the pool works again
    raw.flushdb()


def test_a_strict_read_raises_when_redis_does_not_answer_instead_of_reading_a_miss(settings):
    import copy

    from django.test import override_settings
    from redis.exceptions import RedisError

    from nija.cache import MARKET

    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = "redis://127.0.0.1:1/0"
    with override_settings(CACHES=caches):
        assert MARKET.get("BTC-USD", "miss") == "miss"
        with pytest.raises(RedisError):
            MARKET.get("BTC-USD", "miss", strict=True)
