"""X-Request-ID: trusted only when safe, generated otherwise, echoed on every response (errors included),
and carried by every log line of the request."""

import uuid

import pytest
from django.test import Client

from tests.logs.conftest import json_lines

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_urls")]


def _is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4


def test_a_safe_incoming_id_is_echoed_and_on_every_line_of_the_request(capfd):
    response = Client().get("/api/test/ping", HTTP_X_REQUEST_ID="abc-123")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "abc-123"
    lines = [line for line in json_lines(capfd.readouterr().out) if line.get("request_id") == "abc-123"]
    assert [line["event"] for line in lines] == ["ping", "request_finished"]
    assert {line["logger"] for line in lines} == {"django_structlog.middlewares.request", "tests.logs.views"}
    assert all(line["timestamp"].endswith("Z") for line in lines)


@pytest.mark.parametrize("unsafe", ["a" * 65, "abc 123", "abc;rm", "<script>", "ab/../c", "é"])
def test_an_unsafe_incoming_id_is_replaced_by_a_fresh_uuid4(unsafe, capfd):
    response = Client().get("/api/test/ping", HTTP_X_REQUEST_ID=unsafe)

    echoed = response["X-Request-ID"]
    assert echoed != unsafe
    assert _is_uuid4(echoed)
    output = capfd.readouterr().out
    assert unsafe not in output
    assert [line["event"] for line in json_lines(output) if line.get("request_id") == echoed] == [
        "ping",
        "request_finished",
    ]


def test_without_a_header_a_uuid4_is_generated_per_request():
    first = Client().get("/api/test/ping")["X-Request-ID"]
    second = Client().get("/api/test/ping")["X-Request-ID"]

    assert _is_uuid4(first)
    assert _is_uuid4(second)
    assert first != second


def test_a_64_character_id_is_still_trusted():
    request_id = "A1._-" * 12 + "abcd"
    assert len(request_id) == 64
    assert Client().get("/api/test/ping", HTTP_X_REQUEST_ID=request_id)["X-Request-ID"] == request_id


def test_the_id_is_echoed_on_the_json_404():
    response = Client().get("/api/no/such/path", HTTP_X_REQUEST_ID="id-404")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response["X-Request-ID"] == "id-404"


@pytest.mark.parametrize(
    ("path", "status", "event"),
    [
        ("/api/no/such/path", 404, "Not Found: /api/no/such/path"),
        ("/api/test/boom", 500, "Internal Server Error: /api/test/boom"),
        ("/api/logs", 401, "Unauthorized: /api/logs"),
    ],
)
def test_djangos_own_4xx_5xx_line_carries_the_request_id(path, status, event, capfd):
    # Django logs it after every middleware has returned, when the request's bound context is already cleared
    response = Client().get(path, HTTP_X_REQUEST_ID=f"id-{status}")

    assert response.status_code == status
    [line] = [line for line in json_lines(capfd.readouterr().out) if line["logger"] == "django.request"]
    assert (line["event"], line["status_code"], line["request_id"]) == (event, status, f"id-{status}")


def test_the_id_is_echoed_on_the_json_413():
    response = Client().generic(
        "POST", "/api/test/ping", b"x" * (64 * 1024 + 1), content_type="application/json", HTTP_X_REQUEST_ID="id-413"
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response["X-Request-ID"] == "id-413"


def test_the_id_is_echoed_on_the_json_500_and_the_exception_is_logged_with_it(capfd):
    response = Client().get("/api/test/boom", HTTP_X_REQUEST_ID="id-500")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response["X-Request-ID"] == "id-500"
    failure = next(line for line in json_lines(capfd.readouterr().out) if line["event"] == "unhandled_api_exception")
    assert failure["request_id"] == "id-500"
    assert failure["level"] == "error"
    assert failure["exception"][0]["exc_type"] == "RuntimeError"
    assert failure["exception"][0]["exc_value"] == "unexpected"


def test_the_id_is_echoed_on_drf_errors():
    response = Client().get("/api/logs", HTTP_X_REQUEST_ID="id-drf")

    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] in ("not_authenticated", "permission_denied")
    assert response["X-Request-ID"] == "id-drf"


def test_a_session_user_is_bound_from_the_first_line(operator_client, capfd):
    operator_client.get("/api/test/ping", HTTP_X_REQUEST_ID="id-user")

    lines = [line for line in json_lines(capfd.readouterr().out) if line.get("request_id") == "id-user"]
    operator_id = operator_client.session["_auth_user_id"]
    assert [str(line["user_id"]) for line in lines] == [operator_id] * 2  # the view's line and request_finished


def test_under_asgi_the_id_is_validated_and_echoed_too():
    import asyncio

    from django.test import AsyncClient

    async def requests() -> tuple[str, str]:
        client = AsyncClient()
        trusted = await client.get("/api/test/ping", headers={"X-Request-ID": "asgi-1"})
        replaced = await client.get("/api/test/ping", headers={"X-Request-ID": "bad id"})
        return trusted["X-Request-ID"], replaced["X-Request-ID"]

    trusted, replaced = asyncio.run(requests())
    assert trusted == "asgi-1"
    assert _is_uuid4(replaced)
