"""`/metrics`: Prometheus's text format in multiprocess mode (as under `make run`), not public (a token, or a
loopback peer without one), counting checks by decision and rejections by reason, requests by route, and the desk
snapshot's business gauges."""

import io
import json

import pytest
from celery.signals import task_postrun, task_prerun, worker_process_shutdown
from django.core.management import call_command
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from monitoring.services import aggregation_run
from monitoring.tasks import AGGREGATE, aggregate
from nija import metrics
from tests.monitoring.desk import small_desk
from tests.risk.conftest import bot_client, funded_account, operator_client


@pytest.fixture(autouse=True)
def _clean_redis(redis_client) -> None:
    """No mark or snapshot from another test."""


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def check(client, account_id: int, **changes) -> dict:
    body = {"account_id": account_id, "symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"}
    response = client.post("/api/risk/check-position", json.dumps(body | changes), content_type="application/json")
    assert response.status_code == 200
    return response.json()


def test_the_test_run_uses_multiprocess_mode_like_make_run():
    assert metrics.MULTIPROCESS is True


@pytest.mark.django_db
def test_metrics_count_checks_by_decision_and_rejections_by_reason(api_client):
    account = funded_account("100000")
    bot = bot_client(account)
    approved = ("nija_risk_checks_total", (("decision", "approved"),))
    rejected = ("nija_risk_checks_total", (("decision", "rejected"),))
    size = ("nija_risk_check_rejection_reasons_total", (("reason", "max_position_size"),))
    exposure = ("nija_risk_check_rejection_reasons_total", (("reason", "account_exposure"),))
    before = scrape(api_client)

    check(bot, account.pk)
    outcome = check(bot, account.pk, quantity="2")  # 100,000 of notional: over 20 % and 90 % of equity

    after = scrape(api_client)
    assert [reason["code"] for reason in outcome["reasons"]] == [
        "max_position_size",
        "account_exposure",
        "portfolio_exposure",
        "symbol_concentration",
    ]
    for key, more in ((approved, 1), (rejected, 1), (size, 1), (exposure, 1)):
        assert after.get(key, 0) - before.get(key, 0) == more


@pytest.mark.django_db
def test_metrics_count_requests_by_route_not_by_path(api_client):
    key = (
        "nija_http_requests_total",
        (("method", "GET"), ("route", "api/positions/<int:position_id>"), ("status", "401")),
    )
    before = scrape(api_client).get(key, 0)

    api_client.get("/api/positions/1")
    api_client.get("/api/positions/2")

    assert scrape(api_client)[key] - before == 2


@pytest.mark.django_db
def test_the_desk_gauges_come_from_the_cached_snapshot(api_client):
    assert scrape(api_client)[("nija_desk_snapshot_available", ())] == 0
    small_desk()
    aggregation_run(now=timezone.now())

    samples = scrape(api_client)

    assert samples[("nija_desk_snapshot_available", ())] == 1
    assert samples[("nija_portfolio_equity", ())] == 150000.0
    assert samples[("nija_portfolio_exposure", ())] == 24600.0
    assert samples[("nija_accounts", (("condition", "active"),))] == 2
    assert samples[("nija_portfolio_positions", (("status", "open"),))] == 3


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_set(api_client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"

    assert api_client.get("/metrics").status_code == 401
    assert api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token").status_code == 200


@pytest.mark.django_db
def test_without_a_token_only_a_loopback_peer_is_served(api_client):
    assert api_client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    assert api_client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("trusted_proxies", [0, 1])
@pytest.mark.parametrize(
    "forwarded",
    [
        {"HTTP_X_FORWARDED_FOR": "203.0.113.9"},
        {"HTTP_X_FORWARDED_FOR": "127.0.0.1"},  # whatever it says: a proxy passed this request on
        {"HTTP_FORWARDED": "for=203.0.113.9"},
        {"HTTP_X_REAL_IP": "203.0.113.9"},
    ],
)
def test_a_request_a_proxy_on_the_same_host_passed_on_is_not_a_loopback_peer(
    api_client, settings, trusted_proxies, forwarded
):
    """nginx on the web host proxying to 127.0.0.1:8000: every outside request arrives from loopback."""
    settings.TRUSTED_PROXY_COUNT = trusted_proxies

    response = api_client.get("/metrics", REMOTE_ADDR="127.0.0.1", **forwarded)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_a_celery_task_run_is_counted_timed_and_shown_in_system_health(api_client):
    key = ("nija_celery_task_runs_total", (("outcome", "success"), ("task", AGGREGATE)))
    before = scrape(api_client).get(key, 0)
    metrics.install_celery_metrics()  # what a worker does when it starts
    try:
        aggregate.apply()
    finally:
        task_prerun.disconnect(metrics._task_started)
        task_postrun.disconnect(metrics._task_finished)
        worker_process_shutdown.disconnect(metrics._pool_process_exited)

    samples = scrape(api_client)
    assert samples[key] - before == 1
    assert samples[("nija_celery_task_duration_seconds_count", (("task", AGGREGATE),))] >= 1
    last = metrics.task_last_runs([AGGREGATE])[AGGREGATE]
    assert last["outcome"] == "success"
    assert last["duration_ms"] > 0
    call_command("sync_schedule", stdout=io.StringIO())
    operator, _ = operator_client("viewer")
    tasks = {row["task"]: row for row in operator.get("/api/system/health").json()["periodic_tasks"]}
    assert tasks[AGGREGATE]["last_outcome"] == "success"
    assert tasks[AGGREGATE]["last_finished_at"] is not None
