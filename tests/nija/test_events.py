"""The one event publisher: publishing never waits on Redis and never raises into the service that committed; what
could not be published is counted where operators look (/api/health); what was published is stored and fanned
out to every events process, in order."""

import json
import socket
import threading

import pytest

from nija.event_publisher import BATCH_SIZE, EventPublisher
from nija.event_store import FANOUT_CHANNEL, EventPosition, StoredEvent, stream_key
from nija.events import flush_published, publish, publish_failures


def test_an_unknown_event_type_is_refused():
    with pytest.raises(ValueError, match="unknown event type"):
        publish(event_type="gossip", data={})


@pytest.mark.django_db
def test_a_publish_that_cannot_reach_redis_is_counted_and_shown_in_health(api_client, settings, redis_client):
    before = publish_failures()
    settings.EVENTS_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    queued = publish(event_type="state", data={"state": "halted"}, account_id=7)
    assert flush_published(timeout=10)

    assert queued is True  # the caller never waits for Redis
    assert publish_failures() == before + 2  # the dashboard's and the account's message
    settings.EVENTS_REDIS_URL = settings.REDIS_URL
    events = api_client.get("/api/health").json()["events"]
    assert events["publish_failures_this_process"] == before + 2
    assert events["publisher_this_process"]["dropped"] == before + 2


@pytest.mark.slow
def test_a_full_queue_drops_and_counts_instead_of_blocking_the_caller(settings):
    """Redis accepts the connection and never answers: the writer is stuck, the queue fills, publishing goes on."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings.REDIS_SOCKET_TIMEOUT = 0.1
        settings.EVENTS_REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        publisher = EventPublisher(queue_size=2)
        event = [StoredEvent("dashboard", "metrics", "{}")]

        accepted = [publisher.submit(event) for _ in range(300)]

        # at most one batch in the stuck writer's hands and two queued: every other event refused and counted
        assert accepted.count(False) >= 300 - BATCH_SIZE - 2
        assert publisher.dropped == accepted.count(False)
        assert publisher.flush(timeout=20)
        assert publisher.dropped == 300


def test_published_events_reach_every_listener_and_the_store_in_order(redis_client):
    before = publish_failures()
    subscriber = redis_client.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(FANOUT_CHANNEL)
    subscriber.get_message(timeout=1)

    for number in range(3):
        assert publish(event_type="position", data={"position_id": number}, account_id=3) is True
    assert flush_published()

    received = [json.loads(subscriber.get_message(timeout=2)["data"]) for _ in range(6)]
    subscriber.close()
    assert [(m["c"], m["t"], json.loads(m["d"])) for m in received] == [
        (channel, "position", {"position_id": number}) for number in range(3) for channel in ("dashboard", "account-3")
    ]
    stored = redis_client.xrange(stream_key("account-3"))
    assert [json.loads(fields[b"d"]) for _, fields in stored] == [{"position_id": n} for n in range(3)]
    epoch = int(redis_client.get("nija:events:epoch"))
    assert {m["e"] for m in received} == {str(epoch)}
    assert [m["i"] for m in received if m["c"] == "account-3"] == [entry.decode() for entry, _ in stored]
    assert publish_failures() == before


def test_publishers_in_many_threads_never_lose_or_reorder_one_threads_events(redis_client):
    def send(thread: int) -> None:
        for number in range(50):
            publish(event_type="metrics", data={"thread": thread, "n": number})

    threads = [threading.Thread(target=send, args=(thread,)) for thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert flush_published()

    stored = [json.loads(fields[b"d"]) for _, fields in redis_client.xrange(stream_key("dashboard"))]
    assert len(stored) == 400
    for thread in range(8):
        assert [event["n"] for event in stored if event["thread"] == thread] == list(range(50))
    ids = [EventPosition(1, entry.decode()).to_id() for entry, _ in redis_client.xrange(stream_key("dashboard"))]
    assert ids == sorted(ids)


def test_the_accounts_channel_may_get_its_own_payload(redis_client):
    """What a bot may see can differ from what operators see: the account's channel gets `account_data`."""
    sent = publish(event_type="position", data={"figures": "all"}, account_id=3, account_data={"figures": "own"})
    assert flush_published()

    def stored(channel: str) -> list[dict]:
        return [json.loads(fields[b"d"]) for _, fields in redis_client.xrange(stream_key(channel))]

    assert sent is True
    assert (stored("dashboard"), stored("account-3")) == ([{"figures": "all"}], [{"figures": "own"}])
