"""The test harness's session guard (tests/session_guard.py): one session per test database and per test Redis.

Real advisory locks on the suite's PostgreSQL cluster, on resources named for this test alone (the running
session's own locks are on other names)."""

import os
import uuid

import pytest
from django.conf import settings

from tests.session_guard import GuardedResource, SessionClash, SessionGuard, redis_server


def _resources() -> list[GuardedResource]:
    tag = uuid.uuid4().hex
    return [GuardedResource("database", f"test_nija_guard_{tag}"), GuardedResource("redis", f"127.0.0.1:{tag}")]


def test_a_second_session_on_the_same_resources_is_refused_and_told_who_holds_them():
    resources = _resources()
    first = SessionGuard(settings.DATABASES["default"], resources)
    first.acquire()
    try:
        second = SessionGuard(settings.DATABASES["default"], resources)
        with pytest.raises(SessionClash) as clash:
            second.acquire()
        message = str(clash.value)
        assert resources[0].name in message
        assert f"pid {os.getpid()}" in message
        assert "NIJA_TEST_DB_SUFFIX" in message
        assert second.connection is None  # it holds nothing
    finally:
        first.release()

    second.acquire()  # free once the first session ended
    second.release()


def test_a_session_sharing_only_the_redis_server_is_refused_too():
    database, redis = _resources()
    first = SessionGuard(settings.DATABASES["default"], [database, redis])
    first.acquire()
    try:
        other_database = GuardedResource("database", database.name + "_other")
        with pytest.raises(SessionClash, match=redis.name):
            SessionGuard(settings.DATABASES["default"], [other_database, redis]).acquire()
        alone = SessionGuard(settings.DATABASES["default"], [other_database])
        alone.acquire()  # its own database, and no Redis: free
        alone.release()
    finally:
        first.release()


def test_every_database_number_of_one_redis_server_is_one_resource():
    assert redis_server("redis://127.0.0.1:63800/0") == redis_server("redis://127.0.0.1:63800/1") == "127.0.0.1:63800"
    assert redis_server("redis://127.0.0.1:63801/0") != "127.0.0.1:63800"
