import io
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ParseError
from rest_framework.renderers import JSONRenderer

from nija.api.parsers import DecimalJSONParser
from nija.api.renderers import DecimalJSONRenderer, DecimalStringEncoder


def _assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize("path", ["/api/nope", "/api/health/", "/api/risk/check-position/", "/api/"])
def test_unknown_api_paths_answer_json_404(client, path):
    _assert_error_shape(client.get(path), 404, "not_found")


def test_unknown_api_path_is_json_404_with_debug_on(client, settings):
    settings.DEBUG = True
    _assert_error_shape(
        client.post("/api/does-not-exist", data="{}", content_type="application/json"), 404, "not_found"
    )


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("bearer", [True, False])
@pytest.mark.parametrize("path", ["/api/nope", "/api/risk/check-position/", "/api/accounts/1/metrics/"])
def test_unknown_api_paths_answer_json_404_to_writes_under_djangos_csrf_check(path, bearer, method):
    """A real client sends no CSRF token: Django's test client skips the check unless asked, so this one enforces it
    (a POST to a mistyped path was an HTML 403 "CSRF verification failed")."""
    client = Client(enforce_csrf_checks=True)
    headers = {"Authorization": "Bearer not-a-real-token"} if bearer else {}
    response = getattr(client, method)(path, data="{}", content_type="application/json", headers=headers)
    _assert_error_shape(response, 404, "not_found")


@pytest.mark.django_db
def test_a_known_api_path_under_djangos_csrf_check_still_answers_as_the_api():
    """The exemption is the catch-all's alone; an API view keeps DRF's own handling (here: no credentials, 401)."""
    response = Client(enforce_csrf_checks=True).post(
        "/api/risk/check-position", data="{}", content_type="application/json"
    )
    _assert_error_shape(response, 401, "not_authenticated")


@pytest.fixture
def probes(settings):
    """The project's URLs plus plain Django views (not DRF), under /api/ and outside (tests/nija/urls_middleware.py)."""
    settings.ROOT_URLCONF = "tests.nija.urls_middleware"
    settings.DEBUG = False


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/health", "/api/nope", "/api/risk/check-position"])
def test_a_host_header_outside_allowed_hosts_is_a_json_400_naming_it_under_the_api(settings, path):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    response = Client().get(path, headers={"Host": "10.9.8.7:8000", "Authorization": "Bearer x"})
    error = _assert_error_shape(response, 400, "disallowed_host")
    assert "DJANGO_ALLOWED_HOSTS" in error["message"]


def test_a_host_header_outside_allowed_hosts_keeps_djangos_html_400_outside_the_api(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.DEBUG = False
    response = Client().get("/no-such-page", headers={"Host": "10.9.8.7:8000"})
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status", "code"),
    [("/api/probe/denied", 403, "permission_denied"), ("/api/probe/suspicious", 400, "bad_request")],
)
def test_djangos_own_403_and_400_are_the_error_contract_under_the_api(probes, path, status, code):
    _assert_error_shape(Client(raise_request_exception=False).get(path), status, code)


@pytest.mark.django_db
def test_a_suspicious_file_operation_of_a_view_stays_a_500(probes):
    """A path or redirect the view built itself is the server's bug, not the client's request."""
    _assert_error_shape(Client(raise_request_exception=False).get("/api/probe/file"), 500, "internal_error")


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "status"), [("/probe/denied", 403), ("/probe/suspicious", 400)])
def test_djangos_own_403_and_400_stay_html_outside_the_api(probes, path, status):
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code == status
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_a_csrf_failure_under_the_api_is_the_error_contract_and_html_outside_it(probes):
    """Only a view outside DRF that forgot its exemption can fail Django's CSRF check under /api/."""
    client = Client(enforce_csrf_checks=True)
    _assert_error_shape(
        client.post("/api/probe/middleware", data="{}", content_type="application/json"), 403, "csrf_failed"
    )
    outside = client.post("/probe/middleware", data="{}", content_type="application/json")
    assert outside.status_code == 403
    assert b"CSRF verification failed" in outside.content


def test_paths_outside_the_api_keep_djangos_html_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_wrong_method_answers_json_405(client):
    _assert_error_shape(
        client.post("/api/health", data="{}", content_type="application/json"), 405, "method_not_allowed"
    )


def test_body_over_64_kib_answers_json_413_before_any_view(client):
    body = json.dumps({"pad": "x" * (64 * 1024)})
    error = _assert_error_shape(
        client.post("/api/health", data=body, content_type="application/json"), 413, "payload_too_large"
    )
    assert "65536" in error["message"]


def test_a_body_just_under_the_limit_is_not_413(client):
    body = json.dumps({"pad": "x" * (60 * 1024)})
    assert client.post("/api/nope", data=body, content_type="application/json").status_code == 404


def _parse(text: str):
    return DecimalJSONParser().parse(io.BytesIO(text.encode()), parser_context={})


def test_json_numbers_parse_to_exact_decimals():
    data = _parse('{"price": 1234567890.12345678, "qty": 0.1, "n": 3}')
    assert data["price"] == Decimal("1234567890.12345678")
    assert isinstance(data["qty"], Decimal)
    assert data["qty"] == Decimal("0.1")
    assert data["n"] == 3


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_a_parse_error(literal):
    with pytest.raises(ParseError, match="not a valid number"):
        _parse(f'{{"price": {literal}}}')


def test_malformed_json_is_a_parse_error():
    with pytest.raises(ParseError, match="Malformed JSON"):
        _parse('{"price": ')


def test_decimals_render_as_exact_strings():
    rendered = DecimalJSONRenderer().render({"equity": Decimal("100000.12345678"), "pct": Decimal("0.80")})
    assert json.loads(rendered) == {"equity": "100000.12345678", "pct": "0.80"}


def test_decimals_never_render_in_exponent_form():
    rendered = DecimalJSONRenderer().render({"zero": Decimal("0E-8"), "small": Decimal("1E-8"), "big": Decimal("1E+3")})
    assert json.loads(rendered) == {"zero": "0.00000000", "small": "0.00000001", "big": "1000"}


class _DrfRenderer(JSONRenderer):
    """DRF's own rendering with the project's Decimal encoder: the oracle the orjson path must match byte for byte."""

    encoder_class = DecimalStringEncoder


_AT = datetime(2026, 12, 3, 6, 40, 1, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "data",
    [
        {"equity": Decimal("100000.12345678"), "zero": Decimal("0E-8"), "big": Decimal("1E+3"), "neg": Decimal("-0.5")},
        {"at": _AT, "naive": _AT.replace(tzinfo=None), "whole_second": _AT.replace(microsecond=0)},
        {"day": date(2026, 12, 3), "time": time(6, 40, 1, 500), "age": timedelta(days=1, seconds=5, microseconds=7)},
        {"id": uuid.UUID("12345678-1234-5678-1234-567812345678"), "lazy": gettext_lazy("Not found.")},
        {"text": "line\u2028separator\u2029paragraph", "unicode": "é€😀", "control": 'tab\tnew\nline"quote\\'},
        {"nested": [1, 2.5, None, True, False, {"deep": [Decimal("1.10"), "x"]}], "empty": {}, "list": []},
        {"huge": 2**70, "amount": Decimal("1.5")},  # beyond 64 bits: orjson refuses, DRF's path renders it
        [{"id": 1}, {"id": 2}],
        "a bare string",
    ],
)
def test_the_renderer_writes_the_bytes_drfs_renderer_writes(data):
    assert DecimalJSONRenderer().render(data) == _DrfRenderer().render(data)


def test_an_indented_answer_is_drfs_too():
    context = {"indent": 2}
    data = {"amount": Decimal("1.50"), "at": _AT}

    assert DecimalJSONRenderer().render(data, renderer_context=context) == _DrfRenderer().render(
        data, renderer_context=context
    )
