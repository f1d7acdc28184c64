"""The redaction processor on its own: keys at any depth, bearer tokens and key=value pairs in strings."""

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
