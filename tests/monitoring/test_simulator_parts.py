"""The demo desk's parts without the API: its HTTP client against a real local HTTP server that answers what a
test scripts (a web server restarting, a rate limit), and its walks (bounded, reproducible). The client's waits
are recorded instead of slept, so the backoff schedule is asserted without sleeping through it."""

import json
import random
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitoring.simulator.client import DeskClient
from monitoring.simulator.desk import DeskConfig, DeskSimulator
from monitoring.simulator.walks import EquityWalk, PriceWalk
from tests.servers import free_port


class ScriptedServer:
    """A local HTTP server answering each request with the next (status, headers) of its script."""

    def __init__(self, script: list[tuple[int, dict]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str, str, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, self.headers.get("Authorization", ""), body))
                status, headers = server.script.pop(0) if server.script else (200, {})
                payload = json.dumps({"status": status}).encode()
                self.send_response(status)
                for name, value in ({"Content-Type": "application/json"} | headers).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def scripted() -> Iterator[type[ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: list[tuple[int, dict]]) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client_for(url: str, waits: list[float], **options: object) -> DeskClient:
    return DeskClient(url, rate=0, backoff=0.5, max_backoff=1.5, sleep=waits.append, **options)


def test_a_server_error_is_retried_with_growing_backoff_until_it_answers(scripted):
    server = scripted([(503, {}), (502, {}), (200, {})])
    waits: list[float] = []
    client = client_for(server.url, waits)

    answer = client.call("POST", "/api/accounts/1/metrics", "bot-token", {"equity": Decimal("100.5")})

    assert (answer.status, answer.body) == (200, {"status": 200})
    assert len(server.requests) == 3
    assert [request[:3] for request in server.requests] == [("POST", "/api/accounts/1/metrics", "Bearer bot-token")] * 3
    assert json.loads(server.requests[0][3]) == {"equity": "100.5"}  # money as a JSON string
    assert len(waits) == 2
    assert 0.25 <= waits[0] <= 0.5
    assert 0.5 <= waits[1] <= 1.0
    assert client.counts["retries"] == 2


def test_no_server_gives_no_answer_after_every_attempt_and_never_waits_past_the_cap(scripted):
    waits: list[float] = []
    client = client_for(f"http://127.0.0.1:{free_port()}", waits, attempts=4)

    assert client.call("GET", "/api/accounts/1", "bot-token") is None
    assert client.counts["connection_errors"] == 4
    assert client.counts["gave_up"] == 1
    assert len(waits) == 3
    assert waits[2] <= 1.5


def test_a_4xx_is_returned_at_once(scripted):
    server = scripted([(409, {})])
    waits: list[float] = []

    answer = client_for(server.url, waits).call("POST", "/api/positions/9/fill", "bot-token", {})

    assert answer.status == 409
    assert len(server.requests) == 1
    assert waits == []


def test_a_429_waits_its_retry_after_and_is_not_resent(scripted):
    server = scripted([(429, {"Retry-After": "2"})])
    waits: list[float] = []

    answer = client_for(server.url, waits).call("POST", "/api/risk/check-position", "bot-token", {})

    assert answer.status == 429
    assert len(server.requests) == 1
    assert waits == [2.0]


def test_pacing_spaces_requests_at_the_rate(scripted):
    server = scripted([])
    client = DeskClient(server.url, rate=5)
    started = time.monotonic()

    for _ in range(3):
        client.call("GET", "/api/health", "token")

    assert time.monotonic() - started >= 0.4  # 1/5 s apart
    assert len(server.requests) == 3


def test_refused_demo_tokens_are_said_once_a_round_and_asked_again_slowly_without_exiting(scripted):
    server = scripted([(401, {}), (401, {})])
    waits: list[float] = []
    config = DeskConfig(
        base_url=server.url,
        operator_token="a-token-of-another-database",
        accounts=((1, "bot-token"),),
        reference_prices={"BTC-USD": Decimal(64000)},
        iterations=2,
    )

    stats = DeskSimulator(config, client=client_for(server.url, waits)).run()

    assert [request[1] for request in server.requests] == ["/api/risk/status"] * 2
    assert waits == [30.0, 30.0]
    assert stats["http_401"] == 2


def test_an_equity_walk_stays_within_its_band():
    walk = EquityWalk(anchor=Decimal("100000"), band=0.015)
    rng = random.Random(1)

    figures = [walk.step(rng) for _ in range(5000)]

    assert min(figures) >= Decimal("98500")
    assert max(figures) <= Decimal("101500")
    assert len(set(figures)) > 1000  # it moves


def test_a_sinking_walk_glides_to_its_target_and_stays_around_it():
    walk = EquityWalk(anchor=Decimal("10000"), band=0.015, target=Decimal("8800"))
    rng = random.Random(2)

    figures = [walk.step(rng) for _ in range(200)]

    assert walk.anchor == Decimal("8800")
    assert all(later <= Decimal("10000") * Decimal("1.015") for later in figures)
    assert min(figures) >= Decimal("8800") * Decimal("0.985")
    assert figures[6] < figures[0] * Decimal("0.95")  # about 2 % a report: well down after 7 reports


def test_price_walks_are_reproducible_and_bounded():
    def path(seed: int) -> list[Decimal]:
        walk, rng = PriceWalk(reference=Decimal(100), price=Decimal(100), volatility=0.05), random.Random(seed)
        return [walk.step(rng) for _ in range(3000)]

    assert path(7) == path(7) != path(8)
    assert min(path(7)) >= 50
    assert max(path(7)) <= 200
    assert all(price == price.quantize(Decimal("0.00000001")) for price in path(7))


def test_a_tracked_position_whose_rest_was_released_has_nothing_left_to_fill():
    """An open position keeps its old reservation deadline after a halt released its rest: the desk must read
    `unfilled_released_at`, or it fills a released rest after the operator resumes (a fill_after_release warning)."""
    from datetime import UTC, datetime, timedelta

    from monitoring.simulator.desk import Tracked

    deadline = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    body = {"id": 7, "symbol": "BTC-USD", "side": "long", "status": "open", "quantity": "0.3"}
    body |= {"filled_quantity": "0.1", "closed_quantity": "0", "reservation_expires_at": deadline}

    assert Tracked.from_json(body | {"unfilled_released_at": None}).unfilled == Decimal("0.2")
    assert Tracked.from_json(body | {"unfilled_released_at": deadline}).unfilled == 0
