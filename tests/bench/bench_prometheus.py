"""What Prometheus adds to a check, in process, in multiprocess mode (as under `make run`): the decision counter
the check view increments, and the request middleware's count and latency observation. Printed against a
baseline measured in the same run (an empty call); never asserted on time."""

import statistics
import time
from collections.abc import Callable

from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import resolve

from nija import metrics

ROUNDS = 20_000


def _per_call_us(call: Callable[[], object]) -> float:
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(ROUNDS):
            call()
        samples.append((time.perf_counter() - started) / ROUNDS * 1e6)
    return statistics.median(samples)


def test_prometheus_cost_per_check():
    assert metrics.MULTIPROCESS, "the test settings run prometheus_client in multiprocess mode"
    request = RequestFactory().post("/api/risk/check-position")
    request.resolver_match = resolve("/api/risk/check-position")
    response = HttpResponse()
    middleware = metrics.MetricsMiddleware(lambda _: response)

    baseline = _per_call_us(lambda: None)
    approved = _per_call_us(lambda: metrics.risk_check_observe("approved", ()))
    rejected = _per_call_us(lambda: metrics.risk_check_observe("rejected", ("max_position_size", "account_exposure")))
    http = _per_call_us(lambda: middleware(request))

    print(f"\n[bench_prometheus] multiprocess mode, median of 5 x {ROUNDS} calls; empty call {baseline:.2f} µs")
    print(f"[bench_prometheus] decision counter, approved check:          {approved:6.2f} µs")
    print(f"[bench_prometheus] decision + 2 reason counters, rejected:    {rejected:6.2f} µs")
    print(f"[bench_prometheus] request middleware (count + latency):      {http:6.2f} µs")
    print(
        f"[bench_prometheus] per approved check through HTTP: {approved + http:.1f} µs "
        f"({(approved + http) / 1000:.3f} ms of a check that costs several ms)"
    )
