"""The redaction processor on its own: keys at any depth, bearer tokens and key=value pairs in strings, whole
header values whatever their scheme, and a cost linear in the text."""

import json
import time
from collections.abc import Mapping
from decimal import Decimal

import pytest

from logs.config import _render_json
from logs.redaction import MAX_TEXT_CHARS, REDACTED, redact_secrets, redact_text


def test_sensitive_keys_are_redacted_at_any_depth():
    # given an event with secrets nested in dicts, lists and tuples
    event = {
        "event": "connect",
        "password": "p1",
        "broker": {"accounts": [{"api_secret": "s1", "api_key": "k1", "label": "main"}], "credentials": "c"},
        "rows": ({"passphrase": "pp"}, ["plain"]),
        "headers": {"Authorization": "Bearer t1", "Cookie": "sessionid=c1", "Accept": "json"},
        "_record": object(),
    }
    # when it is redacted
    result = redact_secrets(None, "info", event)
    # then every secret is gone, everything else is kept
    assert result["password"] == REDACTED
    assert result["broker"] == {
        "accounts": [{"api_secret": REDACTED, "api_key": REDACTED, "label": "main"}],
        "credentials": REDACTED,
    }
    assert result["rows"] == [{"passphrase": REDACTED}, ["plain"]]
    assert result["headers"] == {"Authorization": REDACTED, "Cookie": REDACTED, "Accept": "json"}
    assert result["event"] == "connect"
    assert result["_record"] is event["_record"]


def test_bearer_tokens_and_key_value_pairs_in_strings_are_redacted():
    assert redact_text("GET /x with Bearer abc.DEF-123_x=") == f"GET /x with Bearer {REDACTED}"
    assert redact_text("login password=hunter2 ok") == f"login password={REDACTED} ok"
    assert redact_text("{'api_secret': 'a b c', 'n': 1}") == f"{{'api_secret': {REDACTED}, 'n': 1}}"
    assert redact_text('"token": "xyz"') == f'"token": {REDACTED}'
    assert redact_text("GET /api/x?token=abc&page=2") == f"GET /api/x?token={REDACTED}&page=2"


def test_the_password_in_a_url_is_redacted():
    assert redact_text("connecting to postgres://nija:S3cr3t@db:5432/nija") == (
        f"connecting to postgres://nija:{REDACTED}@db:5432/nija"
    )
    assert redact_text("broker redis://:S3cr3t@redis:6379/0 down") == f"broker redis://:{REDACTED}@redis:6379/0 down"
    assert redact_text("json://user:pa:ss@hooks.example.com/x") == f"json://user:{REDACTED}@hooks.example.com/x"
    assert redact_text("see https://example.com/a:b and mailto:x@y") == "see https://example.com/a:b and mailto:x@y"


def test_ordinary_text_and_known_keys_are_untouched():
    event = {"event": "position approved", "request_id": "abc-123", "user_id": 7, "account_id": 3, "n": "1.5"}
    assert redact_secrets(None, "info", dict(event)) == event


class _Leaky:
    """An object whose str() carries secrets (like a request or a client object would)."""

    def __str__(self) -> str:
        return "<Client Bearer tok-1 at /x?access_token=tok-2&api_key=k-3&secret=s-4&password=p-5&page=2>"


class _Headers(Mapping):
    """A mapping that is not a dict (like Django's HttpHeaders)."""

    def __init__(self, **items: str) -> None:
        self._items = items

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def test_any_mapping_is_redacted_like_a_dict_and_other_objects_become_redacted_text():
    event = {"event": "e", "headers": _Headers(Authorization="Bearer t1", Accept="json"), "client": _Leaky()}

    result = redact_secrets(None, "info", event)

    assert result["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert result["client"] == (
        f"<Client Bearer {REDACTED} at /x?access_token={REDACTED}&api_key={REDACTED}&secret={REDACTED}"
        f"&password={REDACTED}&page=2>"
    )


def test_plain_values_keep_their_type():
    event = {"event": "e", "n": 1, "ratio": 0.5, "ok": True, "none": None, "amount": Decimal("1.50000000")}
    assert redact_secrets(None, "info", dict(event)) == event


def test_the_json_renderer_redacts_an_object_that_skipped_redaction():
    line = _render_json(None, "info", {"event": "e", "client": _Leaky(), "amount": Decimal("2.5")})

    assert json.loads(line) == {
        "event": "e",
        "client": (
            f"<Client Bearer {REDACTED} at /x?access_token={REDACTED}&api_key={REDACTED}&secret={REDACTED}"
            f"&password={REDACTED}&page=2>"
        ),
        "amount": "2.5",
    }


# ---------------------------------------------------------------------------------------------- schemes, headers
def test_an_authorization_value_is_redacted_whole_whatever_its_scheme():
    for header in ("Authorization", "Proxy-Authorization", "authorization", "HTTP_AUTHORIZATION"):
        for credential in ("Basic dXNlcjpodW50ZXIy", "Token 9f8e7d6c5b4a", "Bearer 9f8e7d6c5b4a", "9f8e7d6c5b4a"):
            assert redact_text(f"{header}: {credential}") == f"{header}: {REDACTED}", (header, credential)
            assert redact_text(f"{header}={credential}, next=1") == f"{header}={REDACTED}, next=1"
    meta = "{'HTTP_AUTHORIZATION': 'Token 9f8e', 'n': 1}"
    assert redact_text(meta) == f"{{'HTTP_AUTHORIZATION': {REDACTED}, 'n': 1}}"


def test_bare_tokens_in_known_headers_are_redacted_whole():
    assert redact_text("X-Api-Key: k-123, Accept: json") == f"X-Api-Key: {REDACTED}, Accept: json"
    assert redact_text("X-Auth-Token: t-123") == f"X-Auth-Token: {REDACTED}"
    # headers as lists of (name, value) pairs, str or bytes (ASGI scopes, HTTP clients)
    event = {
        "event": "e",
        "headers": [(b"authorization", b"Basic dXNlcjpodW50ZXIy"), (b"x-api-key", b"k-1"), (b"accept", b"json")],
        "pairs": [("Authorization", "Token 9f8e"), ("Cookie", "sessionid=abc")],
    }

    result = redact_secrets(None, "info", event)

    assert result["headers"] == [["b'authorization'", REDACTED], ["b'x-api-key'", REDACTED], ["b'accept'", "b'json'"]]
    assert result["pairs"] == [["Authorization", REDACTED], ["Cookie", REDACTED]]
    assert "dXNlcjpodW50ZXIy" not in json.dumps(result)


def test_an_unterminated_quoted_secret_is_redacted_to_the_end():
    assert redact_text('{"password": "hunter2 and the rest') == f'{{"password": {REDACTED}'


def test_a_value_that_holds_a_sensitive_key_is_still_redacted():
    assert redact_text("a=token=abc&b=2") == f"a=token={REDACTED}&b=2"


def test_ordinary_words_are_not_taken_for_schemes():
    assert redact_text("tier basic applied to token holders") == "tier basic applied to token holders"


# ---------------------------------------------------------------------------------------------- cost
def _cost(text: str) -> float:
    """The least of several timings of one redaction (the least is the one other processes disturbed least)."""
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        redact_text(text)
        timings.append(time.perf_counter() - started)
    return min(timings)


# Shapes that made the former patterns go back over the text from every occurrence of a sensitive word.
HOSTILE_UNITS = (
    "token",
    "token=' ",
    'password="',
    "api_key:::",
    "Bearer ",
    "secret-",
    "Authorization: Basic ",
    "://a:b",
    "://:",
)


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_redaction_cost_grows_linearly_with_the_length(unit):
    """Four times the text costs about four times as much (a quadratic scan: sixteen). Ratios within one test,
    never an absolute time; the bound is generous for a loaded machine."""
    short, long = ((unit * (size // len(unit) + 1))[:size] for size in (2_000, 8_000))

    ratio = _cost(long) / _cost(short)

    assert ratio < 8, f"{unit!r}: 4x the length cost {ratio:.1f}x"


def test_a_text_longer_than_the_bound_is_cut_before_it_is_scanned():
    text = "token=" + "x" * 20 + " " + "a" * (MAX_TEXT_CHARS * 4)

    result = redact_text(text)

    assert result.startswith(f"token={REDACTED} aaa")
    assert result.endswith(f"... [{len(text) - MAX_TEXT_CHARS} characters cut]")
    assert len(result) < MAX_TEXT_CHARS + 40


def _request_cost(client, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    assert client.get("/api/health", **headers).status_code == 200
    return time.perf_counter() - started


@pytest.mark.django_db
def test_secret_looking_headers_cost_a_health_request_about_what_a_plain_one_costs(api_client, redis_client, settings):
    """8 KB of secret-looking text in the headers every request logs: the request costs what a plain one does
    (the former patterns made it cost tens of times as much). A ratio within one test, never an absolute time."""
    settings.HEALTH_CACHE_SECONDS = 3600  # one probe round for the whole test: the requests differ by their headers
    hostile = {
        "HTTP_USER_AGENT": ("token" * 1700)[:8000],
        "HTTP_X_CORRELATION_ID": ("secret-" * 1200)[:8000],
        "HTTP_X_REQUEST_ID": ('password="' * 800)[:8000],
    }
    _request_cost(api_client, {})  # the probe round, connections, first-call imports

    plain, loaded = [], []
    for _ in range(9):
        plain.append(_request_cost(api_client, {}))
        loaded.append(_request_cost(api_client, hostile))

    ratio = min(loaded) / min(plain)
    assert ratio < 3, f"8 KB secret-looking headers made /api/health cost {ratio:.1f}x a plain one"
