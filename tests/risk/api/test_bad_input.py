"""Bad input on every risk endpoint a bot or operator writes through: each answers its 400/404/413/409 in the house
error shape, names the offending field, and writes nothing (every row of every risk table compared before/after).

Bodies are sent as raw JSON text with content_type="application/json", so a `Raw` number reaches the server with
every digit it was written with (a test client would pre-round a float) and NaN/Infinity literals stay literals.
"""

import json
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEntry, TradingInstance, UserPermission
from risk.models import BreachLatch, CorrelationGroup, Portfolio, RiskEvent, SymbolExposure, TradingState
from risk.services.check import CheckInput, position_check
from risk.services.lifecycle import FillInput, position_fill
from tests.risk.conftest import bot_client, funded_account, operator_client
from trading.models import DailyStatistic, Fill, Position, Trade

MISSING = object()

REQUIRED = "This field is required."
NOT_NULL = "This field may not be null."
NOT_BLANK = "This field may not be blank."
NUMBER = "A valid number is required."
INTEGER = "A valid integer is required."
BOOLEAN = "Must be a valid boolean."
NOT_STRING = "Not a valid string."
POSITIVE = "Ensure this value is greater than or equal to 1E-8."
NOT_NEGATIVE = "Ensure this value is greater than or equal to 0."
AT_LEAST_ONE = "Ensure this value is greater than or equal to 1."
DIGITS_18 = "Ensure that there are no more than 18 digits in total."
PLACES_8 = "Ensure that there are no more than 8 decimal places."
TEN_WHOLE_DIGITS = "Ensure that there are no more than 10 digits before the decimal point."
UNKNOWN = "Unknown field."
OBJECT = "The body must be a JSON object."
PATTERN = "This value does not match the required pattern."
ONE_THOUSAND = "Ensure this field has no more than 1000 characters."

STATE_MODELS = (
    Position,
    Fill,
    Trade,
    DailyStatistic,
    RiskEvent,
    BreachLatch,
    AuditEntry,
    TradingInstance,
    UserPermission,
    Portfolio,
    SymbolExposure,
    CorrelationGroup,
    TradingState,
)


def database_state() -> dict[str, list[dict]]:
    """Every row of every table a risk endpoint can write, field by field (counters and counts included)."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in STATE_MODELS}


@dataclass(frozen=True)
class Raw:
    """A JSON literal written into the body text exactly as given (`1e30`, `NaN`, `0.123456789`)."""

    literal: str


@dataclass(frozen=True)
class Body:
    """A whole body sent as is, instead of the valid body with changes."""

    text: str


def encode(body: dict) -> str:
    """JSON text of `body`, with each `Raw` value spliced in verbatim."""
    placeholders = {name: f"__raw_{name}__" for name, value in body.items() if isinstance(value, Raw)}
    text = json.dumps({name: placeholders.get(name, value) for name, value in body.items()})
    for name, placeholder in placeholders.items():
        text = text.replace(json.dumps(placeholder), body[name].literal)
    return text


def request_text(valid: dict, changes: dict | Body) -> str:
    if isinstance(changes, Body):
        return changes.text
    body = dict(valid)
    for name, value in changes.items():
        if value is MISSING:
            body.pop(name)
        else:
            body[name] = value
    return encode(body)


def invalid(fields: dict[str, str] | str, message: str = "") -> dict:
    """The 400 body of a validation error: `invalid("price", NUMBER)` or `invalid({"a": UNKNOWN, "b": UNKNOWN})`."""
    named = {fields: message} if isinstance(fields, str) else fields
    return {
        "error": {
            "code": "validation_error",
            "message": "Invalid input.",
            "fields": {name: [text] for name, text in named.items()},
        }
    }


def error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


MALFORMED_NAN = error("malformed_request", "Malformed JSON: NaN is not a valid number")
MALFORMED_INFINITY = error("malformed_request", "Malformed JSON: Infinity is not a valid number")
MALFORMED_MINUS_INFINITY = error("malformed_request", "Malformed JSON: -Infinity is not a valid number")
MALFORMED_TRUNCATED = error("malformed_request", "Malformed JSON: Expecting value: line 1 column 14 (char 13)")
MALFORMED_STATUS = error("malformed_request", "Malformed JSON: Expecting value: line 1 column 12 (char 11)")
TOO_DEEP_ARRAY = error(
    "malformed_request",
    "Malformed JSON: maximum recursion depth exceeded while decoding a JSON array from a unicode string",
)
TOO_DEEP_OBJECT = error(
    "malformed_request",
    "Malformed JSON: maximum recursion depth exceeded while decoding a JSON object from a unicode string",
)
NOT_OBJECT = invalid("non_field_errors", OBJECT)
NO_DATA = invalid("non_field_errors", "No data provided")
TOO_BIG = error("payload_too_large", "Request bodies are limited to 65536 bytes.")
ACCOUNT_NOT_FOUND = error("account_not_found", "Unknown account.")
POSITION_NOT_FOUND = error("position_not_found", "Unknown position.")
ONE_MEGABYTE = "x" * (1024 * 1024)


def number_cases(field: str, *, zero_allowed: bool = False) -> list:
    """The shared table for one amount field: types, non-numbers, NaN/Infinity, sign, size and precision."""
    floor = NOT_NEGATIVE if zero_allowed else POSITIVE
    cases = [
        pytest.param({field: MISSING}, 400, invalid(field, REQUIRED), id=f"{field}-missing"),
        pytest.param({field: None}, 400, invalid(field, NOT_NULL), id=f"{field}-null"),
        pytest.param({field: True}, 400, invalid(field, NUMBER), id=f"{field}-bool"),
        pytest.param({field: ["1"]}, 400, invalid(field, NUMBER), id=f"{field}-list"),
        pytest.param({field: {"value": "1"}}, 400, invalid(field, NUMBER), id=f"{field}-object"),
        pytest.param({field: "abc"}, 400, invalid(field, NUMBER), id=f"{field}-letters"),
        pytest.param({field: ""}, 400, invalid(field, NUMBER), id=f"{field}-empty-string"),
        pytest.param({field: "1,5"}, 400, invalid(field, NUMBER), id=f"{field}-comma"),
        pytest.param({field: "1_000"}, 400, invalid(field, NUMBER), id=f"{field}-underscores"),
        pytest.param({field: "\u0661\u0662"}, 400, invalid(field, NUMBER), id=f"{field}-arabic-indic-digits"),
        pytest.param({field: "0x10"}, 400, invalid(field, NUMBER), id=f"{field}-hex"),
        pytest.param({field: "NaN"}, 400, invalid(field, NUMBER), id=f"{field}-NaN-string"),
        pytest.param({field: "nan"}, 400, invalid(field, NUMBER), id=f"{field}-nan-string"),
        pytest.param({field: "sNaN"}, 400, invalid(field, NUMBER), id=f"{field}-sNaN-string"),
        pytest.param({field: "Infinity"}, 400, invalid(field, NUMBER), id=f"{field}-Infinity-string"),
        pytest.param({field: "-Infinity"}, 400, invalid(field, NUMBER), id=f"{field}-minus-Infinity-string"),
        pytest.param({field: "inf"}, 400, invalid(field, NUMBER), id=f"{field}-inf-string"),
        pytest.param({field: Raw("NaN")}, 400, MALFORMED_NAN, id=f"{field}-NaN-literal"),
        pytest.param({field: Raw("Infinity")}, 400, MALFORMED_INFINITY, id=f"{field}-Infinity-literal"),
        pytest.param({field: Raw("-Infinity")}, 400, MALFORMED_MINUS_INFINITY, id=f"{field}-minus-Infinity-literal"),
        pytest.param({field: "-1"}, 400, invalid(field, floor), id=f"{field}-negative-string"),
        pytest.param({field: Raw("-1.5")}, 400, invalid(field, floor), id=f"{field}-negative-number"),
        pytest.param({field: "1e30"}, 400, invalid(field, DIGITS_18), id=f"{field}-1e30-string"),
        pytest.param({field: Raw("1e30")}, 400, invalid(field, DIGITS_18), id=f"{field}-1e30-number"),
        pytest.param({field: Raw("1" + "0" * 30)}, 400, invalid(field, DIGITS_18), id=f"{field}-10^30-integer"),
        pytest.param({field: "10000000000"}, 400, invalid(field, TEN_WHOLE_DIGITS), id=f"{field}-above-numeric-18-8"),
        pytest.param({field: "1.123456789"}, 400, invalid(field, PLACES_8), id=f"{field}-9-decimals-string"),
        pytest.param({field: Raw("1.123456789")}, 400, invalid(field, PLACES_8), id=f"{field}-9-decimals-number"),
        pytest.param(
            # Parsed as a float this would be 1234567890.1234567 and pass for 8 decimals: parsed as Decimal it
            # keeps its 9th decimal and is refused.
            {field: Raw("1234567890.123456789")},
            400,
            invalid(field, DIGITS_18),
            id=f"{field}-19-digits-number",
        ),
        pytest.param({field: "1e-9"}, 400, invalid(field, PLACES_8), id=f"{field}-1e-9-string"),
        pytest.param({field: "1" * 60_000 + "x"}, 400, invalid(field, NUMBER), id=f"{field}-60000-digits-string"),
        pytest.param({field: "0.1\n"}, 400, invalid(field, NUMBER), id=f"{field}-trailing-newline"),
    ]
    if not zero_allowed:
        cases += [
            pytest.param({field: "0"}, 400, invalid(field, POSITIVE), id=f"{field}-zero-string"),
            pytest.param({field: Raw("0")}, 400, invalid(field, POSITIVE), id=f"{field}-zero-number"),
            pytest.param({field: "-0"}, 400, invalid(field, POSITIVE), id=f"{field}-minus-zero"),
        ]
    return cases


def body_cases() -> list:
    """Bodies that are not a JSON object, or not JSON at all."""
    return [
        pytest.param(Body('[{"quantity": "1"}]'), 400, NOT_OBJECT, id="body-array"),
        pytest.param(Body("[]"), 400, NOT_OBJECT, id="body-empty-array"),
        pytest.param(Body('"approve"'), 400, NOT_OBJECT, id="body-string"),
        pytest.param(Body("5"), 400, NOT_OBJECT, id="body-number"),
        pytest.param(Body("true"), 400, NOT_OBJECT, id="body-true"),
        pytest.param(Body('{"quantity": '), 400, MALFORMED_TRUNCATED, id="body-malformed"),
        pytest.param(Body(json.dumps({"pad": ONE_MEGABYTE})), 413, TOO_BIG, id="body-1MB"),
        pytest.param(Body("[" * 5000 + "]" * 5000), 400, TOO_DEEP_ARRAY, id="body-nested-5000-deep"),
        pytest.param(Body('{"a": ' * 3000 + "1" + "}" * 3000), 400, TOO_DEEP_OBJECT, id="body-objects-3000-deep"),
    ]


def extra_cases(names: list[str], value: object = "0") -> list:
    return [pytest.param({name: value}, 400, invalid(name, UNKNOWN), id=f"extra-{name}") for name in names]


def post_text(client: APIClient, path: str, text: str):
    return client.post(path, text, content_type="application/json")


def assert_refused(response, status: int, expected: dict, before: dict) -> None:
    assert response.status_code == status, response.content
    assert response.json() == expected
    assert database_state() == before


# ---------------------------------------------------------------------------------------------- check-position
CHECK_URL = "/api/risk/check-position"
CHECK_BODY = {"symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"}

CHECK_CASES = [
    pytest.param({"account_id": MISSING}, 400, invalid("account_id", REQUIRED), id="account_id-missing"),
    pytest.param({"account_id": None}, 400, invalid("account_id", NOT_NULL), id="account_id-null"),
    pytest.param({"account_id": "abc"}, 400, invalid("account_id", INTEGER), id="account_id-letters"),
    pytest.param({"account_id": True}, 400, invalid("account_id", INTEGER), id="account_id-bool"),
    pytest.param({"account_id": Raw("1.5")}, 400, invalid("account_id", INTEGER), id="account_id-fraction"),
    pytest.param({"account_id": [1]}, 400, invalid("account_id", INTEGER), id="account_id-list"),
    pytest.param({"account_id": 0}, 400, invalid("account_id", AT_LEAST_ONE), id="account_id-zero"),
    pytest.param({"account_id": -3}, 400, invalid("account_id", AT_LEAST_ONE), id="account_id-negative"),
    pytest.param({"symbol": MISSING}, 400, invalid("symbol", REQUIRED), id="symbol-missing"),
    pytest.param({"symbol": None}, 400, invalid("symbol", NOT_NULL), id="symbol-null"),
    pytest.param({"symbol": ""}, 400, invalid("symbol", NOT_BLANK), id="symbol-blank"),
    pytest.param({"symbol": 123}, 400, invalid("symbol", NOT_STRING), id="symbol-number"),
    pytest.param({"symbol": ["BTC-USD"]}, 400, invalid("symbol", NOT_STRING), id="symbol-list"),
    pytest.param({"symbol": True}, 400, invalid("symbol", NOT_STRING), id="symbol-bool"),
    pytest.param(
        {"symbol": "BTCUSD"},
        400,
        invalid("symbol", "Symbol 'BTCUSD' is not BASE-QUOTE (like 'BTC-USD')."),
        id="symbol-no-separator",
    ),
    pytest.param(
        {"symbol": "BTC-EUR"},
        400,
        invalid("symbol", "Symbol 'BTC-EUR': the quote currency must be USD."),
        id="symbol-other-quote",
    ),
    pytest.param(
        {"symbol": "B-USD"},
        400,
        invalid("symbol", "Symbol 'B-USD': the base must be 2 to 10 letters or digits."),
        id="symbol-short-base",
    ),
    pytest.param(
        {"symbol": "BTC-USD;DROP"},
        400,
        invalid("symbol", "Symbol 'BTC-USD;DROP': the quote currency must be USD."),
        id="symbol-injection",
    ),
    pytest.param(
        {"symbol": "X" * 33},
        400,
        invalid("symbol", "Ensure this field has no more than 32 characters."),
        id="symbol-long",
    ),
    pytest.param({"side": MISSING}, 400, invalid("side", REQUIRED), id="side-missing"),
    pytest.param({"side": "buy"}, 400, invalid("side", '"buy" is not a valid choice.'), id="side-buy"),
    pytest.param({"side": "sell"}, 400, invalid("side", '"sell" is not a valid choice.'), id="side-sell"),
    pytest.param({"side": 1}, 400, invalid("side", '"1" is not a valid choice.'), id="side-number"),
    pytest.param({"side": None}, 400, invalid("side", NOT_NULL), id="side-null"),
    *number_cases("quantity"),
    *number_cases("price"),
    pytest.param(
        {"quantity": "1000000", "price": "100000"},
        400,
        invalid("quantity", "quantity x price is beyond the largest notional."),
        id="notional-above-numeric-18-8",
    ),
    pytest.param({"reduce_only": "maybe"}, 400, invalid("reduce_only", BOOLEAN), id="reduce_only-not-bool"),
    pytest.param(
        {"reduce_only": True},
        400,
        invalid("position_id", "A reduce-only check names the position it reduces."),
        id="reduce_only-without-position",
    ),
    pytest.param({"position_id": "abc"}, 400, invalid("position_id", INTEGER), id="position_id-letters"),
    pytest.param({"position_id": 0}, 400, invalid("position_id", AT_LEAST_ONE), id="position_id-zero"),
    pytest.param({"dry_run": "maybe"}, 400, invalid("dry_run", BOOLEAN), id="dry_run-not-bool"),
    pytest.param({"dry_run": [True]}, 400, invalid("dry_run", BOOLEAN), id="dry_run-list"),
    pytest.param({"client_order_id": "a b"}, 400, invalid("client_order_id", PATTERN), id="client_order_id-space"),
    pytest.param({"client_order_id": "x" * 65}, 400, invalid("client_order_id", PATTERN), id="client_order_id-65"),
    pytest.param(
        {"client_order_id": "ord-1\n"}, 400, invalid("client_order_id", PATTERN), id="client_order_id-newline"
    ),
    pytest.param({"client_order_id": ""}, 400, invalid("client_order_id", NOT_BLANK), id="client_order_id-blank"),
    *extra_cases(["exposure", "status", "notional", "decision", "reserved", "max_position_size", "instance_id"]),
    pytest.param({"limits": {"max_position_pct": "1"}}, 400, invalid("limits", UNKNOWN), id="extra-limits"),
    pytest.param(
        {"exposure": "0", "status": "approved", "notional": "0.01"},
        400,
        invalid({"exposure": UNKNOWN, "notional": UNKNOWN, "status": UNKNOWN}),
        id="extra-several",
    ),
    pytest.param({"position_size": "1"}, 400, invalid("position_size", UNKNOWN), id="legacy-field-beside-symbol-body"),
    pytest.param(Body("{}"), 400, invalid({name: REQUIRED for name in ("account_id", *CHECK_BODY)}), id="body-empty"),
    pytest.param(Body(""), 400, invalid({name: REQUIRED for name in ("account_id", *CHECK_BODY)}), id="body-none"),
    pytest.param(Body("null"), 400, NO_DATA, id="body-null"),
    *body_cases(),
]

LEGACY_CASES = [
    pytest.param({"position_size": "NaN"}, 400, invalid("position_size", NUMBER), id="legacy-NaN"),
    pytest.param({"position_size": Raw("NaN")}, 400, MALFORMED_NAN, id="legacy-NaN-literal"),
    pytest.param({"position_size": "-5"}, 400, invalid("position_size", POSITIVE), id="legacy-negative"),
    pytest.param({"position_size": "0"}, 400, invalid("position_size", POSITIVE), id="legacy-zero"),
    pytest.param({"position_size": Raw("1e30")}, 400, invalid("position_size", DIGITS_18), id="legacy-1e30"),
    pytest.param(
        {"position_size": Raw("5000.123456789")}, 400, invalid("position_size", PLACES_8), id="legacy-9-decimals"
    ),
    pytest.param({"position_size": True}, 400, invalid("position_size", NUMBER), id="legacy-bool"),
    pytest.param({"account_id": MISSING}, 400, invalid("account_id", REQUIRED), id="legacy-account-missing"),
    pytest.param({"side": "long"}, 400, invalid("side", UNKNOWN), id="legacy-extra-side"),
    pytest.param({"exposure": "0"}, 400, invalid("exposure", UNKNOWN), id="legacy-extra-exposure"),
]


@pytest.fixture
def own_and_other(relaxed_rate_limits):
    """The bot's funded account (with a reservation already held, so counters are not all zero) and another
    bot's funded account."""
    own = funded_account("100000")
    other = funded_account("1000000")
    client = bot_client(own)
    response = post_text(client, CHECK_URL, encode({"account_id": own.pk, **CHECK_BODY}))
    assert response.status_code == 200, response.json()
    assert response.json()["decision"] == "approved"
    return client, own, other


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "status", "expected"), CHECK_CASES)
def test_check_position_refuses_bad_input_and_writes_nothing(own_and_other, changes, status, expected):
    client, own, _ = own_and_other
    before = database_state()

    response = post_text(client, CHECK_URL, request_text({"account_id": own.pk, **CHECK_BODY}, changes))

    assert_refused(response, status, expected, before)


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "status", "expected"), LEGACY_CASES)
def test_legacy_check_refuses_bad_input_and_writes_nothing(own_and_other, changes, status, expected):
    client, own, _ = own_and_other
    before = database_state()

    response = post_text(client, CHECK_URL, request_text({"account_id": own.pk, "position_size": "5000"}, changes))

    assert_refused(response, status, expected, before)


@pytest.mark.django_db
@pytest.mark.parametrize("dry_run", [False, True], ids=["reserving", "dry-run"])
@pytest.mark.parametrize("whose", ["unknown", "another-bot"])
def test_check_position_for_an_account_it_may_not_use_is_404_and_writes_nothing(own_and_other, whose, dry_run):
    client, _own, other = own_and_other
    account_id = {"unknown": other.pk + 1000, "another-bot": other.pk}[whose]
    before = database_state()

    response = post_text(client, CHECK_URL, encode({"account_id": account_id, **CHECK_BODY, "dry_run": dry_run}))

    assert_refused(response, 404, ACCOUNT_NOT_FOUND, before)


@pytest.mark.django_db
@pytest.mark.parametrize("whose", ["unknown", "another-bot"])
def test_legacy_check_for_an_account_it_may_not_use_is_404(own_and_other, whose):
    client, _own, other = own_and_other
    account_id = {"unknown": other.pk + 1000, "another-bot": other.pk}[whose]
    before = database_state()

    response = post_text(client, CHECK_URL, encode({"account_id": account_id, "position_size": "5000"}))

    assert_refused(response, 404, ACCOUNT_NOT_FOUND, before)


@pytest.mark.django_db
def test_check_position_refuses_a_form_encoded_body(own_and_other):
    client, own, _ = own_and_other
    before = database_state()

    response = client.post(CHECK_URL, {"account_id": own.pk, **CHECK_BODY})  # multipart, not JSON

    assert_refused(
        response,
        415,
        error(
            "unsupported_media_type",
            'Unsupported media type "multipart/form-data; boundary=BoUnDaRyStRiNg; charset=utf-8" in request.',
        ),
        before,
    )


# ---------------------------------------------------------------------------------------------- fill / close
FILL_BODY = {"exchange_order_id": "ex-1", "quantity": "0.1", "price": "50000", "fees": "1.5"}

FILL_CASES = [
    pytest.param({"exchange_order_id": MISSING}, 400, invalid("exchange_order_id", REQUIRED), id="order-id-missing"),
    pytest.param({"exchange_order_id": "ex 1"}, 400, invalid("exchange_order_id", PATTERN), id="order-id-space"),
    pytest.param({"exchange_order_id": ["ex-1"]}, 400, invalid("exchange_order_id", PATTERN), id="order-id-list"),
    *number_cases("quantity"),
    *number_cases("price"),
    pytest.param({"fees": "NaN"}, 400, invalid("fees", NUMBER), id="fees-NaN-string"),
    pytest.param({"fees": Raw("Infinity")}, 400, MALFORMED_INFINITY, id="fees-Infinity-literal"),
    pytest.param({"fees": Raw("0.123456789")}, 400, invalid("fees", PLACES_8), id="fees-9-decimals"),
    pytest.param({"fees": "1e30"}, 400, invalid("fees", DIGITS_18), id="fees-1e30"),
    pytest.param({"fees": True}, 400, invalid("fees", NUMBER), id="fees-bool"),
    *extra_cases(["account_id", "status", "notional", "entry_price", "filled_quantity", "instance_id", "opened_at"]),
    pytest.param({"account_id": 1, "notional": "1"}, 400, invalid({"account_id": UNKNOWN, "notional": UNKNOWN})),
    pytest.param(
        {"quantity": "0.10000001"},
        409,
        error("quantity_exceeded", "Fill quantity 0.10000001 exceeds the unfilled checked quantity 0.10000000."),
        id="quantity-above-reserved",
    ),
    *body_cases(),
]

CLOSE_BODY = {"client_close_id": "close-1", "exit_price": "51000", "fees": "1", "quantity": "0.05"}

CLOSE_CASES = [
    pytest.param({"client_close_id": MISSING}, 400, invalid("client_close_id", REQUIRED), id="close-id-missing"),
    pytest.param({"client_close_id": "c/1"}, 400, invalid("client_close_id", PATTERN), id="close-id-slash"),
    *number_cases("exit_price"),
    pytest.param({"quantity": "0"}, 400, invalid("quantity", POSITIVE), id="quantity-zero"),
    pytest.param({"quantity": Raw("-0.05")}, 400, invalid("quantity", POSITIVE), id="quantity-negative"),
    pytest.param({"quantity": "NaN"}, 400, invalid("quantity", NUMBER), id="quantity-NaN"),
    pytest.param({"quantity": Raw("NaN")}, 400, MALFORMED_NAN, id="quantity-NaN-literal"),
    pytest.param({"quantity": Raw("0.050000001")}, 400, invalid("quantity", PLACES_8), id="quantity-9-decimals"),
    pytest.param({"quantity": [0.05]}, 400, invalid("quantity", NUMBER), id="quantity-list"),
    pytest.param({"fees": "Infinity"}, 400, invalid("fees", NUMBER), id="fees-Infinity"),
    pytest.param({"fees": Raw("1e30")}, 400, invalid("fees", DIGITS_18), id="fees-1e30"),
    *extra_cases(["pnl", "realized_pnl", "account_id", "status", "entry_price", "closed_at", "trade_id"]),
    pytest.param(
        {"quantity": "0.10000001"},
        409,
        error("quantity_exceeded", "Close quantity 0.10000001 exceeds the open quantity 0.10000000."),
        id="quantity-above-open",
    ),
    *body_cases(),
]


@pytest.fixture
def open_positions(own_and_other):
    """The bot's approved (unfilled) position, the same bot's open position (0.1 filled at 50000), and another
    bot's open position."""
    client, own, other = own_and_other
    approved = Position.objects.get(instance=own)

    def opened(account: TradingInstance, order: str) -> Position:
        outcome = position_check(
            request=CheckInput(
                account_id=account.pk, symbol="BTC-USD", side="long", quantity=Decimal("0.1"), price=Decimal("50000")
            ),
            user_id=account.user_id,
            now=timezone.now(),
        )
        fill = FillInput(exchange_order_id=order, quantity=Decimal("0.1"), price=Decimal("50000"))
        return position_fill(position_id=outcome.position_id, instance_id=account.pk, fill=fill, now=timezone.now())

    return client, approved, opened(own, "own-fill"), opened(other, "other-fill")


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "status", "expected"), FILL_CASES)
def test_fill_refuses_bad_input_and_writes_nothing(open_positions, changes, status, expected):
    client, approved, _, _ = open_positions
    before = database_state()

    response = post_text(client, f"/api/positions/{approved.pk}/fill", request_text(FILL_BODY, changes))

    assert_refused(response, status, expected, before)


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "status", "expected"), CLOSE_CASES)
def test_close_refuses_bad_input_and_writes_nothing(open_positions, changes, status, expected):
    client, _, opened, _ = open_positions
    before = database_state()

    response = post_text(client, f"/api/positions/{opened.pk}/close", request_text(CLOSE_BODY, changes))

    assert_refused(response, status, expected, before)


NO_BODY = {
    "error": {"code": "validation_error", "message": "Cancel takes no body.", "fields": {"body": ["Must be empty."]}}
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "status", "expected"),
    [
        pytest.param('{"status": "cancelled"}', 400, NO_BODY, id="object"),
        pytest.param('{"account_id": 1}', 400, NO_BODY, id="account"),
        pytest.param("[1]", 400, NO_BODY, id="array"),
        pytest.param('"cancel"', 400, NO_BODY, id="string"),
        pytest.param('{"status": ', 400, MALFORMED_STATUS, id="malformed"),
        pytest.param(json.dumps({"pad": ONE_MEGABYTE}), 413, TOO_BIG, id="1MB"),
    ],
)
def test_cancel_refuses_a_body_and_releases_nothing(open_positions, text, status, expected):
    client, approved, _, _ = open_positions
    before = database_state()

    response = post_text(client, f"/api/positions/{approved.pk}/cancel", text)

    assert_refused(response, status, expected, before)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["fill", "close", "cancel"])
@pytest.mark.parametrize("whose", ["unknown", "another-bot", "beyond-bigint"])
def test_position_actions_on_a_position_it_may_not_use_are_404(open_positions, action, whose):
    client, _, _, others = open_positions
    position_id = {"another-bot": others.pk, "unknown": others.pk + 1000, "beyond-bigint": 10**20}[whose]
    body = {"fill": encode(FILL_BODY), "close": encode(CLOSE_BODY), "cancel": ""}[action]
    before = database_state()

    response = post_text(client, f"/api/positions/{position_id}/{action}", body)

    assert_refused(response, 404, POSITION_NOT_FOUND, before)


# ---------------------------------------------------------------------------------------------- approve / reject
DECISION_CASES = [
    pytest.param({"reason": ["ok"]}, 400, invalid("reason", NOT_STRING), id="reason-list"),
    pytest.param({"reason": {"text": "ok"}}, 400, invalid("reason", NOT_STRING), id="reason-object"),
    pytest.param({"reason": 5}, 400, invalid("reason", NOT_STRING), id="reason-number"),
    pytest.param({"reason": "x" * 1001}, 400, invalid("reason", ONE_THOUSAND), id="reason-too-long"),
    *extra_cases(["status", "notional", "decided_by", "account_id", "reasons", "limits"]),
    pytest.param(Body("null"), 400, NO_DATA, id="body-null"),
    *body_cases(),
]


@pytest.fixture
def pending_position(relaxed_rate_limits):
    """A position waiting for approval (n = 30000 >= the 25000 threshold) on a well funded account."""
    account = funded_account("1000000")
    body = {"account_id": account.pk, "symbol": "ETH-USD", "side": "long", "quantity": "10", "price": "3000"}
    response = post_text(bot_client(account), CHECK_URL, encode(body))
    assert response.json()["decision"] == "pending_approval", response.json()
    return Position.objects.get(pk=response.json()["position_id"])


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize(("changes", "status", "expected"), DECISION_CASES)
def test_approve_and_reject_refuse_bad_input_and_write_nothing(pending_position, action, changes, status, expected):
    client, _ = operator_client("approver")
    before = database_state()

    response = post_text(
        client, f"/api/positions/{pending_position.pk}/{action}", request_text({"reason": "looks fine"}, changes)
    )

    assert_refused(response, status, expected, before)
    assert Position.objects.get(pk=pending_position.pk).status == "pending_approval"


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_approve_and_reject_of_an_unknown_position_are_404(pending_position, action):
    client, _ = operator_client("approver")
    before = database_state()

    response = post_text(client, f"/api/positions/{pending_position.pk + 1000}/{action}", encode({"reason": "x"}))

    assert_refused(response, 404, POSITION_NOT_FOUND, before)


# ---------------------------------------------------------------------------------------------- halt / resume
HALT_CASES = [
    pytest.param({"reason": MISSING}, 400, invalid("reason", REQUIRED), id="reason-missing"),
    pytest.param({"reason": ""}, 400, invalid("reason", NOT_BLANK), id="reason-blank"),
    pytest.param({"reason": None}, 400, invalid("reason", NOT_NULL), id="reason-null"),
    pytest.param({"reason": "x" * 1001}, 400, invalid("reason", ONE_THOUSAND), id="reason-too-long"),
    pytest.param({"reason": ["drill"]}, 400, invalid("reason", NOT_STRING), id="reason-list"),
    pytest.param({"reason": 5}, 400, invalid("reason", NOT_STRING), id="reason-number"),
    pytest.param({"mode": "stop"}, 400, invalid("mode", '"stop" is not a valid choice.'), id="mode-unknown"),
    pytest.param({"mode": "active"}, 400, invalid("mode", '"active" is not a valid choice.'), id="mode-active"),
    pytest.param({"mode": "HALTED"}, 400, invalid("mode", '"HALTED" is not a valid choice.'), id="mode-upper"),
    pytest.param({"mode": True}, 400, invalid("mode", '"True" is not a valid choice.'), id="mode-bool"),
    pytest.param({"account_id": "abc"}, 400, invalid("account_id", INTEGER), id="account_id-letters"),
    pytest.param({"account_id": True}, 400, invalid("account_id", INTEGER), id="account_id-bool"),
    pytest.param({"account_id": 0}, 400, invalid("account_id", AT_LEAST_ONE), id="account_id-zero"),
    pytest.param({"account_id": [1]}, 400, invalid("account_id", INTEGER), id="account_id-list"),
    *extra_cases(["state", "scope", "changed_by", "cancelled_position_ids", "previous", "exposure"]),
    *body_cases(),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "status", "expected"), HALT_CASES)
def test_halt_refuses_bad_input_and_cancels_nothing(open_positions, changes, status, expected):
    _, approved, _, _ = open_positions
    client, _ = operator_client("risk_admin")
    before = database_state()

    response = post_text(
        client,
        "/api/risk/halt",
        request_text({"account_id": approved.instance_id, "mode": "halted", "reason": "drill"}, changes),
    )

    assert_refused(response, status, expected, before)
    assert Position.objects.get(pk=approved.pk).status == "approved"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "status", "expected"),
    [
        pytest.param({"reason": MISSING}, 400, invalid("reason", REQUIRED), id="reason-missing"),
        pytest.param({"mode": "halted"}, 400, invalid("mode", UNKNOWN), id="extra-mode"),
        pytest.param({"account_id": "abc"}, 400, invalid("account_id", INTEGER), id="account_id-letters"),
        pytest.param(Body("[]"), 400, NOT_OBJECT, id="body-array"),
    ],
)
def test_resume_refuses_bad_input_and_writes_nothing(open_positions, changes, status, expected):
    _, approved, _, _ = open_positions
    client, _ = operator_client("risk_admin")
    before = database_state()

    response = post_text(
        client, "/api/risk/resume", request_text({"account_id": approved.instance_id, "reason": "over"}, changes)
    )

    assert_refused(response, status, expected, before)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["halt", "resume"])
def test_halt_and_resume_of_an_unknown_account_are_404(open_positions, action):
    *_, others = open_positions
    client, _ = operator_client("risk_admin")
    before = database_state()

    response = post_text(
        client, f"/api/risk/{action}", encode({"account_id": others.instance_id + 1000, "reason": "x"})
    )

    assert_refused(response, 404, ACCOUNT_NOT_FOUND, before)


# ---------------------------------------------------------------------------------------------- metrics
METRICS_BODY = {"equity": "100000", "cash_balance": "50000"}

METRICS_CASES = [
    *number_cases("equity", zero_allowed=True),
    pytest.param({"cash_balance": "NaN"}, 400, invalid("cash_balance", NUMBER), id="cash-NaN"),
    pytest.param({"cash_balance": Raw("-Infinity")}, 400, MALFORMED_MINUS_INFINITY, id="cash-minus-Infinity"),
    pytest.param({"cash_balance": "-1"}, 400, invalid("cash_balance", NOT_NEGATIVE), id="cash-negative"),
    pytest.param({"cash_balance": Raw("1.123456789")}, 400, invalid("cash_balance", PLACES_8), id="cash-9-decimals"),
    *extra_cases(["peak_equity", "day_start_equity", "exposure", "account_id", "equity_reported_at", "state"]),
    *body_cases(),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "status", "expected"), METRICS_CASES)
def test_metrics_report_refuses_bad_input_and_writes_nothing(own_and_other, changes, status, expected):
    client, own, _ = own_and_other
    before = database_state()

    response = post_text(client, f"/api/accounts/{own.pk}/metrics", request_text(METRICS_BODY, changes))

    assert_refused(response, status, expected, before)


@pytest.mark.django_db
@pytest.mark.parametrize("whose", ["unknown", "another-bot", "beyond-bigint"])
def test_metrics_report_for_an_account_it_may_not_use_is_404(own_and_other, whose):
    client, _own, other = own_and_other
    account_id = {"unknown": other.pk + 1000, "another-bot": other.pk, "beyond-bigint": 10**20}[whose]
    before = database_state()

    response = post_text(client, f"/api/accounts/{account_id}/metrics", encode(METRICS_BODY))

    assert_refused(response, 404, ACCOUNT_NOT_FOUND, before)
