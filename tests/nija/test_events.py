"""The one event publisher: a failed publish never raises into the service that committed, and is counted where
operators look (/api/health)."""

import json

import pytest
import redis
from django_eventstream import eventstream

from nija.events import publish, publish_failures


def test_an_unknown_event_type_is_refused():
    with pytest.raises(ValueError, match="unknown event type"):
        publish(event_type="gossip", data={})


@pytest.mark.django_db
def test_a_publish_that_cannot_reach_redis_returns_false_and_is_counted_in_health(api_client, monkeypatch):
    before = publish_failures()
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    monkeypatch.setattr(eventstream, "redis_client", dead)  # the library's fan-out client, pointed at a closed port

    sent = publish(event_type="state", data={"state": "halted"}, account_id=7)

    monkeypatch.undo()
    assert sent is False
    assert publish_failures() == before + 1
    assert api_client.get("/api/health").json()["events"] == {"publish_failures_this_process": before + 1}


def test_a_publish_reaches_every_listener_through_redis_on_the_dashboard_and_the_accounts_channel(redis_client):
    before = publish_failures()
    subscriber = redis_client.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe("events_channel")  # django-eventstream's fan-out channel, read by every SSE process
    subscriber.get_message(timeout=1)

    assert publish(event_type="position", data={"position_id": 1}, account_id=3) is True

    received = [subscriber.get_message(timeout=2) for _ in range(2)]
    subscriber.close()
    messages = [json.loads(message["data"]) for message in received if message]
    assert [(m["channel"], m["event_type"], json.loads(m["data"])) for m in messages] == [
        ("dashboard", "position", {"position_id": 1}),
        ("account-3", "position", {"position_id": 1}),
    ]
    assert publish_failures() == before
