"""Alert test helpers: the real Celery broker (the suite's Redis) read back to see what was enqueued and to run
it, a local HTTP receiver, and channels and rules made through the services."""

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pytest
import redis
from django.conf import settings

from monitoring.alerts.engine import Figures
from monitoring.alerts.services.channels import alert_channel_create
from monitoring.alerts.services.evaluation import EvaluationSummary, alerts_evaluate
from monitoring.alerts.tasks import ALERT_DELIVER, alert_deliver
from tests.monitoring.alerts.receiver import Receiver
from tests.risk.conftest import relaxed_rate_limits  # noqa: F401 - a fixture the figure tests use


@dataclass(frozen=True)
class Queued:
    delivery_id: int
    attempt: int
    eta: datetime | None


class Broker:
    """The Celery broker's Redis database: what alert tasks wait there, and running them as a worker would."""

    def __init__(self, capture_on_commit) -> None:
        self.client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self.capture = capture_on_commit

    def queued(self) -> list[Queued]:
        found = []
        for raw in reversed(self.client.lrange("celery", 0, -1)):  # kombu pushes on the left, takes from the right
            message = json.loads(raw)
            if message["headers"]["task"] != ALERT_DELIVER:
                continue
            args = json.loads(base64.b64decode(message["body"]))[0]
            eta = message["headers"].get("eta")
            found.append(Queued(*args, eta=datetime.fromisoformat(eta) if eta else None))
        return found

    def run_all(self) -> list[str]:
        """Take every queued alert task off the queue and run it (eagerly, in this process); the retries a run
        enqueues wait for the next call."""
        tasks = self.queued()
        self.client.delete("celery")
        return [self.run(task.delivery_id, task.attempt) for task in tasks]

    def run(self, delivery_id: int, attempt: int) -> str:
        with self.capture(execute=True):
            return alert_deliver.apply(args=(delivery_id, attempt)).get()


@pytest.fixture
def broker(django_capture_on_commit_callbacks) -> Broker:
    broker = Broker(django_capture_on_commit_callbacks)
    broker.client.flushdb()
    yield broker
    broker.client.flushdb()


@pytest.fixture
def receiver():
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def allow_private(settings) -> None:
    """The local receiver listens on 127.0.0.1, which production refuses."""
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def evaluate(django_capture_on_commit_callbacks):
    def run(now: datetime, *, portfolio: dict | None = None, **accounts: dict) -> EvaluationSummary:
        figures = Figures(
            portfolio={name: Decimal(value) for name, value in (portfolio or {}).items()},
            accounts={
                name: {account: Decimal(value) for account, value in values.items()}
                for name, values in accounts.items()
            },
        )
        with django_capture_on_commit_callbacks(execute=True):
            return alerts_evaluate(figures=figures, now=now)

    return run


def webhook_channel(url: str, name: str = "desk-webhook"):
    """A webhook channel made through the service; returns (channel, its generated signing secret)."""
    write = alert_channel_create(actor=None, name=name, kind="webhook", url=url)
    return write.channel, write.revealed_secret
