"""Reasons are rendered for their viewer at every exit: a bot never sees portfolio-wide figures (other users'
money), only the code and a generic message with limit and value null for a portfolio rule, while its own
account's figures stay; operators see every figure. Exits: the check answer (real, dry run, legacy `reason`), its
replay, the position reads and the live stream's `position` event."""

import json
from decimal import Decimal

import pytest

from nija.event_store import stream_key
from nija.events import flush_published
from risk.models import CorrelationGroup, CorrelationGroupMember, RiskLimits
from tests.risk.conftest import bot_client, funded_account, operator_client
from tests.risk.services.scenario import reserve

CHECK_URL = "/api/risk/check-position"
BODY = {"symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"}
# The portfolio's figures in this desk: equity 1,000,000 (the bot's 100,000 and another account's 900,000), 20,000
# held by the other account in BTC-USD, caps of 0.02 x 1,000,000 = 20,000, one position of at most one.
PORTFOLIO_FIGURES = ["1000000", "900000", "20000", "25000", "0.02"]
PORTFOLIO_CODES = ["max_open_positions", "portfolio_exposure", "symbol_concentration", "correlated_exposure"]
FOR_A_BOT = [
    {
        "code": "max_position_size",
        "message": "notional 5000.00000000 exceeds max position size 1000.00000000",
        "limit": "1000.00000000",
        "value": "5000.00000000",
    },
    {
        "code": "max_open_positions",
        "message": "the portfolio holds its maximum number of positions",
        "limit": None,
        "value": None,
    },
    {
        "code": "portfolio_exposure",
        "message": "the portfolio's exposure limit would be exceeded",
        "limit": None,
        "value": None,
    },
    {
        "code": "symbol_concentration",
        "message": "the portfolio's exposure limit for this symbol would be exceeded",
        "limit": None,
        "value": None,
    },
    {
        "code": "correlated_exposure",
        "message": "the exposure limit of this symbol's correlation group would be exceeded",
        "limit": None,
        "value": None,
    },
]


@pytest.fixture
def desk(relaxed_rate_limits, redis_client):
    """A bot whose 5,000 check breaks its own max position size (1,000) and four portfolio rules."""
    group = CorrelationGroup.objects.create(name="majors", limit_pct=Decimal("0.02"))
    CorrelationGroupMember.objects.create(group=group, symbol="BTC-USD")
    bot = funded_account("100000", permission={"max_position_size": Decimal("1000")})
    other = funded_account("900000")
    assert reserve(other, quantity="0.4", price="50000").status == "approved"  # 20,000 held by someone else
    RiskLimits.objects.filter(instance__isnull=True).update(
        max_portfolio_exposure_pct=Decimal("0.02"), max_symbol_exposure_pct=Decimal("0.02"), max_total_positions=1
    )
    return bot


def post_check(client, account, **fields):
    response = client.post(CHECK_URL, {"account_id": account.pk, **BODY, **fields}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def assert_no_portfolio_figure(reasons: object) -> None:
    text = json.dumps(reasons)
    assert [figure for figure in PORTFOLIO_FIGURES if figure in text] == []


@pytest.mark.django_db
@pytest.mark.parametrize("fields", [{}, {"dry_run": True}, {"client_order_id": "ord-1"}], ids=["real", "dry", "id"])
def test_a_bots_check_answer_shows_its_own_figures_and_no_portfolio_figure(desk, fields):
    body = post_check(bot_client(desk), desk, **fields)

    assert body["decision"] == "rejected"
    assert body["reasons"] == FOR_A_BOT
    assert_no_portfolio_figure(body["reasons"])


@pytest.mark.django_db
def test_a_replayed_check_shows_no_portfolio_figure_either(desk):
    client = bot_client(desk)
    post_check(client, desk, client_order_id="ord-1")

    replay = post_check(client, desk, client_order_id="ord-1")

    assert replay["replayed"] is True
    assert replay["reasons"] == FOR_A_BOT
    assert_no_portfolio_figure(replay["reasons"])


@pytest.mark.django_db
def test_the_legacy_reason_is_the_first_reason_as_the_bot_sees_it(desk):
    bot = funded_account("100000")  # within its own limits: the first failing rule is a portfolio one
    body = bot_client(bot).post(CHECK_URL, {"account_id": bot.pk, "position_size": "5000"}, format="json").json()

    assert body["reason"] == "the portfolio holds its maximum number of positions"
    assert [reason["code"] for reason in body["reasons"]] == ["max_open_positions", "portfolio_exposure"]
    assert_no_portfolio_figure([body["reason"], body["reasons"]])


@pytest.mark.django_db
def test_position_reads_render_reasons_for_bots_and_keep_every_figure_for_operators(desk):
    position_id = post_check(bot_client(desk), desk)["position_id"]
    operator, _ = operator_client("viewer")

    own = bot_client(desk).get(f"/api/positions/{position_id}").json()
    listed = bot_client(desk).get("/api/positions").json()["results"]
    seen = operator.get(f"/api/positions/{position_id}").json()

    assert own["reasons"] == FOR_A_BOT
    assert [position["reasons"] for position in listed] == [FOR_A_BOT]
    assert_no_portfolio_figure([own["reasons"], listed[0]["reasons"]])
    assert [reason["code"] for reason in seen["reasons"]] == ["max_position_size", *PORTFOLIO_CODES]
    exposure = next(reason for reason in seen["reasons"] if reason["code"] == "portfolio_exposure")
    assert exposure == {
        "code": "portfolio_exposure",
        "message": "portfolio exposure 25000.00000000 would exceed 20000.00000000"
        " (0.020000 of portfolio equity 1000000.00000000)",
        "limit": "20000.00000000",
        "value": "25000.00000000",
    }
    assert seen["reasons"][1]["value"] == 1  # the portfolio's position count


@pytest.mark.django_db
def test_the_stream_gives_the_dashboard_every_figure_and_the_bots_channel_none(
    desk, redis_client, django_capture_on_commit_callbacks
):
    redis_client.flushdb()  # the desk's own events
    with django_capture_on_commit_callbacks(execute=True):
        post_check(bot_client(desk), desk)
    assert flush_published()

    def position_event(channel: str) -> dict:
        (event,) = [
            json.loads(fields[b"d"])
            for _, fields in redis_client.xrange(stream_key(channel))
            if fields[b"t"] == b"position"
        ]
        return event

    for_bot, for_desk = position_event(f"account-{desk.pk}"), position_event("dashboard")
    assert for_bot["reasons"] == FOR_A_BOT
    assert_no_portfolio_figure(for_bot["reasons"])
    assert [reason["code"] for reason in for_desk["reasons"]] == ["max_position_size", *PORTFOLIO_CODES]
    assert "portfolio equity 1000000.00000000" in json.dumps(for_desk["reasons"])


@pytest.mark.django_db
def test_an_equity_report_that_halts_the_portfolio_tells_its_bot_why_without_a_portfolio_figure(redis_client):
    """Its drop takes the portfolio's day (start 200,000, both accounts) past the 0.08 emergency loss: the bot learns
    that the portfolio halted, never the portfolio's loss or day start (its own figures it may see)."""
    bot = funded_account("100000")
    funded_account("100000")

    body = bot_client(bot).post(f"/api/accounts/{bot.pk}/metrics", {"equity": "80000"}, format="json").json()

    assert body["state"] == {"portfolio": "halted", "account": "active"}
    assert body["emergency"] == ["the portfolio's daily loss has reached its emergency limit: trading is halted"]
    assert (body["equity"], body["day_start_equity"]) == ("80000.00000000", "100000.00000000")
    assert [figure for figure in ("200000", "20000") if figure in json.dumps(body["emergency"])] == []
