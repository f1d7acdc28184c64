"""nija.sessions against real PostgreSQL and the suite's real Redis: a logged-out session must not live on in the cache.

`load()` reads the cache before PostgreSQL, so a cache entry that survives its row keeps the session valid. Redis
failures are injected by pointing the cache at a port nothing listens on, for the one request under test.
"""

import socket
import time

import pytest
from django.contrib.sessions.models import Session

from nija.cache import SESSION
from nija.sessions import SessionCacheDeleteFailed, SessionStore
from tests.accounts.factories import OperatorFactory

ADMIN = "/admin/"
LOGOUT = "/admin/logout/"


def _dead_redis_caches(caches: dict) -> dict:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {"default": {**caches["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}}


def _logged_in(client) -> str:
    client.force_login(OperatorFactory())
    assert client.get(ADMIN).status_code == 200
    return client.cookies["sessionid"].value


@pytest.mark.django_db
def test_a_logout_whose_cache_delete_fails_raises_and_the_retry_logs_out(client, redis_client, settings):
    session_key = _logged_in(client)
    working_caches = settings.CACHES

    # Redis hiccups during the logout: the row is deleted, the cache delete fails, and the logout says so.
    settings.CACHES = _dead_redis_caches(working_caches)
    with pytest.raises(SessionCacheDeleteFailed):
        client.post(LOGOUT)
    settings.CACHES = working_caches

    assert not Session.objects.filter(session_key=session_key).exists()
    assert redis_client.exists(SESSION.raw_key(session_key)) == 1  # the stale entry the failure left behind
    assert 0 < redis_client.ttl(SESSION.raw_key(session_key)) <= 300

    # The user retries: the stale entry still authenticates the retry, which deletes it.
    assert client.post(LOGOUT).status_code == 200
    assert redis_client.exists(SESSION.raw_key(session_key)) == 0
    client.cookies["sessionid"] = session_key
    response = client.get(ADMIN)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_a_cache_entry_that_outlives_its_row_stops_authenticating_after_session_cache_ttl(
    client, redis_client, settings
):
    settings.SESSION_CACHE_TTL = 1
    session_key = _logged_in(client)
    assert redis_client.pttl(SESSION.raw_key(session_key)) <= 1000

    Session.objects.filter(session_key=session_key).delete()  # the row is gone, the cache entry is not
    assert client.get(ADMIN).status_code == 200  # the hazard: the cache is read first
    time.sleep(1.1)

    response = client.get(ADMIN)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_a_refill_from_postgresql_gets_the_short_ttl_too(client, redis_client):
    session_key = _logged_in(client)
    redis_client.flushdb()

    assert client.get(ADMIN).status_code == 200

    assert 290 < redis_client.ttl(SESSION.raw_key(session_key)) <= 300


@pytest.mark.django_db
def test_a_session_that_expires_sooner_than_the_cap_keeps_its_own_ttl(redis_client):
    store = SessionStore()
    store["answer"] = 42
    store.set_expiry(30)
    store.save()

    assert 25 < redis_client.ttl(SESSION.raw_key(store.session_key)) <= 30


@pytest.mark.django_db
def test_reads_and_writes_still_fail_soft_when_redis_is_unreachable(redis_client, settings):
    settings.CACHES = _dead_redis_caches(settings.CACHES)
    store = SessionStore()
    store["answer"] = 42
    store.save()  # written to PostgreSQL, the cache write logged and skipped

    assert SessionStore(store.session_key).load() == {"answer": 42}
    assert SessionStore().exists(store.session_key) is True


@pytest.mark.django_db
def test_flush_with_redis_unreachable_raises_after_deleting_the_row(redis_client, settings):
    store = SessionStore()
    store["answer"] = 42
    store.save()
    session_key = store.session_key
    settings.CACHES = _dead_redis_caches(settings.CACHES)
    store = SessionStore(session_key)

    with pytest.raises(SessionCacheDeleteFailed):
        store.flush()

    assert not Session.objects.filter(session_key=session_key).exists()
    assert redis_client.exists(SESSION.raw_key(session_key)) == 1


@pytest.mark.django_db
def test_login_rotates_the_key_with_redis_unreachable_the_old_entry_carrying_only_pre_login_data(
    client, redis_client, settings
):
    anonymous = SessionStore()
    anonymous["cart"] = "pre-login"
    anonymous.save()
    old_key = anonymous.session_key
    working_caches = settings.CACHES
    settings.CACHES = _dead_redis_caches(working_caches)
    client.cookies["sessionid"] = old_key

    client.force_login(OperatorFactory())  # cycle_key: the old key's cache delete fails, logged, not raised
    settings.CACHES = working_caches

    new_key = client.cookies["sessionid"].value
    assert new_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert Session.objects.get(session_key=new_key).get_decoded()["cart"] == "pre-login"
    assert SESSION.get(old_key) == {"cart": "pre-login"}  # what the leftover entry holds: no login
