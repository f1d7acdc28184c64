"""The redaction processor on its own: keys at any depth, bearer tokens and key=value pairs in strings."""

import json
from collections.abc import Mapping
from decimal import Decimal

from logs.config import _render_json
from logs.redaction import REDACTED, redact_secrets, redact_text


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
