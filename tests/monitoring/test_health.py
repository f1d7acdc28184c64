import copy
import threading
import time

import pytest
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import override_settings
from rest_framework.test import APIClient


def _closed_port_redis_caches() -> dict:
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = "redis://127.0.0.1:1/0"
    return caches


@pytest.mark.django_db(transaction=True)
def test_health_is_200_with_every_component_up(api_client):
    response = api_client.get("/api/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    for component in ("database", "redis", "celery"):
        assert body[component]["status"] == "ok"
        assert body[component]["latency_ms"] >= 0
    assert 0 <= body["cpu"]["percent"] <= 100
    assert body["memory"]["total_bytes"] > 0
    assert body["disk"]["total_bytes"] > 0


@pytest.mark.django_db(transaction=True)
def test_health_is_503_json_when_redis_is_unreachable(api_client):
    with override_settings(CACHES=_closed_port_redis_caches()):
        response = api_client.get("/api/health")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["redis"]["status"] == "down"
    assert body["redis"]["latency_ms"] is None
    assert body["database"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_health_is_503_when_the_celery_broker_is_unreachable(api_client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/1"):
        response = api_client.get("/api/health")

    assert response.status_code == 503
    assert response.json()["celery"]["status"] == "down"


@pytest.mark.django_db(transaction=True)
def test_health_is_503_when_postgresql_is_unreachable(api_client, settings):
    databases = copy.deepcopy(settings.DATABASES)
    databases["default"]["PORT"] = 1
    from django.db import connections

    original = connections.settings
    connections.settings = databases
    try:
        response = api_client.get("/api/health")
    finally:
        connections.settings = original

    assert response.status_code == 503
    assert response.json()["database"]["status"] == "down"
    assert response.json()["redis"]["status"] == "ok"


@pytest.mark.django_db
def test_health_answers_within_the_probe_timeout_when_a_probe_hangs(api_client, monkeypatch):
    import time

    from monitoring import selectors

    monkeypatch.setitem(selectors.PROBES, "celery", lambda: time.sleep(3))
    started = time.monotonic()
    response = api_client.get("/api/health")

    assert time.monotonic() - started < 2.5
    assert response.status_code == 503
    assert response.json()["celery"] == {"status": "down", "latency_ms": None, "error": "timeout"}


# ---------------------------------------------------------------------------------------------- an open endpoint
def _burst(calls: int, call) -> list:
    """`calls` threads released together, each calling `call()` once; every result."""
    barrier = threading.Barrier(calls)
    results: list = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        result = call()
        with lock:
            results.append(result)
        connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def database_connections_opened():
    """Every database connection opened while the test runs, by any thread."""
    opened: list[str] = []

    def count(sender, connection, **kwargs) -> None:
        opened.append(threading.current_thread().name)

    connection_created.connect(count, weak=False)
    yield opened
    connection_created.disconnect(count)


@pytest.mark.django_db(transaction=True)
def test_concurrent_health_calls_run_one_probe_round_a_second(settings, redis_client, database_connections_opened):
    settings.HEALTH_CACHE_SECONDS = 1.0

    first = _burst(16, lambda: APIClient().get("/api/health"))
    # then, once the round is older than HEALTH_CACHE_SECONDS, the next burst runs exactly one more
    time.sleep(1.1)
    second = _burst(16, lambda: APIClient().get("/api/health"))

    assert [response.status_code for response in first + second] == [200] * 32
    assert len(database_connections_opened) == 2
    assert all(name.startswith("health-probe") for name in database_connections_opened)
    assert len({response.json()["checked_at"] for response in first}) == 1
    assert len({response.json()["checked_at"] for response in second}) == 1
    assert first[0].json()["checked_at"] < second[0].json()["checked_at"]


@pytest.mark.django_db
def test_anonymous_health_callers_are_rate_limited_per_address(settings, redis_client):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "health": {"anonymous": (2, 60)}}
    client = APIClient()

    answers = [client.get("/api/health", REMOTE_ADDR="203.0.113.5") for _ in range(3)]
    elsewhere = client.get("/api/health", REMOTE_ADDR="203.0.113.6")

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["code"] == "rate_limited"
    assert answers[2]["X-RateLimit-Limit"] == "2"
    assert int(answers[2]["Retry-After"]) > 0
    assert elsewhere.status_code == 200
