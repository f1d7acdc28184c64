"""Shared fixtures: real PostgreSQL (pytest-django's test database) and the suite's own Redis server."""

import pytest
from django_redis import get_redis_connection
from rest_framework.test import APIClient


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def redis_client():
    """The raw client of the cache's Redis, flushed before and after the test."""
    client = get_redis_connection("default")
    client.flushdb()
    yield client
    client.flushdb()
