"""Errors become HTTP in one place (nija.api.errors.api_exception_handler): a DomainError of any app, Django's
ValidationError (a model's full_clean, a service's check) and DRF's own exceptions all answer the one JSON shape,
with their status, and the request's transaction rolls back. A Django ValidationError reaching a view was a 500."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from accounts.errors import AccountInactive
from nija.errors import ConflictError, DomainError, InvalidInput, ServiceUnavailableError
from nija.urls import urlpatterns as project_urls
from risk.errors import PositionNotFound, StaleState
from trading.market import InvalidMarketPrice, MarketPriceUnavailable

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

RAISED = {
    "plain": lambda: ValidationError("This user has trading or audit history: deactivate it instead."),
    "per-field": lambda: ValidationError({"label": ["This user already has a broker credential with this label."]}),
    "model": lambda: Group(name="x" * 200).full_clean(),
    "domain": lambda: DomainError(),
    "invalid": lambda: InvalidInput("Unknown query parameter.", fields={"sort": ["Unknown parameter."]}),
    "conflict": lambda: ConflictError(),
    "unavailable": lambda: ServiceUnavailableError("The store is down.", code="store_unavailable"),
    "inactive": lambda: AccountInactive(),
    "position": lambda: PositionNotFound(),
    "stale": lambda: StaleState(),
    "price": lambda: InvalidMarketPrice("bid", "must not be above the ask."),
    "cache": lambda: MarketPriceUnavailable(),
}


class RaisingApi(APIView):
    """Writes a row, then raises what the URL names (as a service would, mid-transaction)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request, name: str):
        with transaction.atomic():
            Group.objects.create(name=f"written before {name}")
            error = RAISED[name]()
            if error is not None:
                raise error


urlpatterns = [path("api/raise/<str:name>", RaisingApi.as_view()), *project_urls]


def answer(client, name: str) -> tuple[int, dict]:
    response = client.post(f"/api/raise/{name}", content_type="application/json")
    assert response["Content-Type"].startswith("application/json")
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        (
            "plain",
            400,
            {"code": "validation_error", "message": "This user has trading or audit history: deactivate it instead."},
        ),
        (
            "per-field",
            400,
            {
                "code": "validation_error",
                "message": "Invalid input.",
                "fields": {"label": ["This user already has a broker credential with this label."]},
            },
        ),
        ("domain", 400, {"code": "bad_request", "message": "Bad request."}),
        (
            "invalid",
            400,
            {
                "code": "validation_error",
                "message": "Unknown query parameter.",
                "fields": {"sort": ["Unknown parameter."]},
            },
        ),
        ("conflict", 409, {"code": "conflict", "message": "The request conflicts with the current state."}),
        ("unavailable", 503, {"code": "store_unavailable", "message": "The store is down."}),
        ("inactive", 403, {"code": "account_inactive", "message": AccountInactive.default_detail}),
        ("position", 404, {"code": "position_not_found", "message": "Unknown position."}),
        ("stale", 503, {"code": "stale_state", "message": StaleState.default_detail}),
        (
            "price",
            400,
            {
                "code": "validation_error",
                "message": "Invalid input.",
                "fields": {"bid": ["must not be above the ask."]},
            },
        ),
        ("cache", 503, {"code": "market_cache_unavailable", "message": "The price cache is unavailable."}),
    ],
)
def test_every_error_answers_its_status_in_the_one_shape_and_writes_nothing(client, name, status, error):
    assert answer(client, name) == (status, {"error": error})
    assert not Group.objects.filter(name__startswith="written before").exists()


def test_a_models_full_clean_reaching_a_view_is_a_400_naming_the_field(client):
    status, body = answer(client, "model")

    assert (status, body["error"]["code"], list(body["error"]["fields"])) == (400, "validation_error", ["name"])
    assert not Group.objects.filter(name__startswith="written before").exists()


def test_domain_errors_do_not_depend_on_the_web_framework():
    from rest_framework.exceptions import APIException

    for make in RAISED.values():
        try:
            error = make()
        except ValidationError as raised:
            error = raised
        assert not isinstance(error, APIException)
