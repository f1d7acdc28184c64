import copy

import pytest
from django.conf import settings
from django.test import override_settings


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
