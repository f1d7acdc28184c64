"""seed_demo with the risk layer, at small scale: risk's command is the one Django runs, every counter equals the
sum over its positions afterwards (also on top of existing risk state and on a re-run), the demo groups and limits
are set and audited, and a seeded bot's small check is approved."""

import json
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from io import StringIO

import pytest
from django.core.management import call_command, get_commands
from django.db.models import Sum
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEntry, TradingInstance
from risk.models import CorrelationGroup, Portfolio, RiskLimits, SymbolExposure
from tests.risk.conftest import books_drift, bot_client, counter_drift, equity_drift, funded_account
from trading.models import EXPOSURE_STATUSES, Position

pytestmark = pytest.mark.django_db


def seed(tmp_path, name: str = "tokens.json", accounts: int = 6, positions: int = 125) -> tuple[dict, str]:
    out = StringIO()
    path = tmp_path / name
    call_command("seed_demo", accounts=accounts, positions=positions, tokens_out=path, seed=11, stdout=out)
    return json.loads(path.read_text()), out.getvalue()


def test_the_risk_command_is_the_one_django_runs():
    assert get_commands()["seed_demo"] == "risk"


def test_counters_equal_the_positions_after_seeding(tmp_path, redis_client):
    tokens, output = seed(tmp_path)

    assert counter_drift() == []
    assert books_drift() == []  # the demo books as the services book them
    held = Position.objects.filter(status__in=EXPOSURE_STATUSES)
    portfolio = Portfolio.objects.get()
    assert portfolio.position_count == held.count() > 0
    assert portfolio.exposure == held.aggregate(total=Sum("notional"))["total"]
    sums = TradingInstance.objects.filter(is_active=True).aggregate(e=Sum("equity"), d=Sum("day_start_equity"))
    assert (portfolio.equity, portfolio.day_start_equity) == (sums["e"], sums["d"])
    assert set(TradingInstance.objects.values_list("equity_counted", flat=True)) == {True}  # all fresh and active
    assert equity_drift() == []
    assert portfolio.counters_verified_at is not None
    assert set(SymbolExposure.objects.values_list("symbol", flat=True)) == set(held.values_list("symbol", flat=True))
    assert "6 accounts, 125 positions" in output
    assert f"portfolio exposure {portfolio.exposure} over {portfolio.position_count} positions" in output
    assert len(tokens["accounts"]) == 6
    assert output.rstrip().endswith("s (risk rows and the commit included).")


def test_demo_groups_and_limits_are_set_printed_and_audited(tmp_path, redis_client):
    _, output = seed(tmp_path)

    groups = {g.name: g for g in CorrelationGroup.objects.prefetch_related("members")}
    assert sorted(m.symbol for m in groups["majors"].members.all()) == ["BTC-USD", "ETH-USD"]
    assert groups["majors"].limit_pct == Decimal("0.5")
    assert sorted(m.symbol for m in groups["alts"].members.all()) == [
        "ADA-USD",
        "AVAX-USD",
        "DOGE-USD",
        "LINK-USD",
        "SOL-USD",
        "XRP-USD",
    ]
    majors_held = Position.objects.filter(status__in=EXPOSURE_STATUSES, symbol__in=["BTC-USD", "ETH-USD"])
    assert groups["majors"].exposure == majors_held.aggregate(total=Sum("notional"))["total"]
    limits = RiskLimits.objects.get(instance__isnull=True)
    assert (limits.max_total_positions, limits.equity_max_age_seconds, limits.heartbeat_timeout_seconds) == (
        1_000_000,
        86_400,
        86_400,
    )
    assert (limits.max_position_pct, limits.max_account_exposure_pct) == (Decimal("0.2"), Decimal("0.9"))
    assert (
        "max_total_positions 50 -> 1000000, equity_max_age_seconds 900 -> 86400, heartbeat_timeout_seconds 120 -> 86400"
        in output
    )
    audit = AuditEntry.objects.get(action="risk_limits.change")
    assert (audit.actor, audit.before, audit.after) == (
        None,
        {"max_total_positions": 50, "equity_max_age_seconds": 900, "heartbeat_timeout_seconds": 120},
        {"max_total_positions": 1_000_000, "equity_max_age_seconds": 86_400, "heartbeat_timeout_seconds": 86_400},
    )


def test_seeding_on_top_of_live_risk_state_and_again_stays_exact(tmp_path, redis_client, relaxed_rate_limits):
    account = funded_account("100000")
    body = {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"}
    assert bot_client(account).post("/api/risk/check-position", body, format="json").json()["decision"] == "approved"

    silent = funded_account("70000")
    TradingInstance.objects.filter(pk=silent.pk).update(equity_reported_at=timezone.now() - timedelta(days=2))

    seed(tmp_path, "first.json")
    _, output = seed(tmp_path, "second.json", accounts=3, positions=40)

    assert counter_drift() == []
    assert equity_drift() == []
    silent.refresh_from_db()
    assert silent.equity_counted is False  # its report is older than even the demo's one-day max age
    assert TradingInstance.objects.count() == 11
    assert "Demo portfolio default limits already in force (unchanged)." in output
    assert AuditEntry.objects.filter(action="risk_limits.change").count() == 1


def test_a_seeded_bot_gets_a_small_check_approved(tmp_path, redis_client, relaxed_rate_limits):
    tokens, _ = seed(tmp_path)
    entry = tokens["accounts"][0]
    account = TradingInstance.objects.get(pk=entry["id"])
    price = Decimal("64000")
    quantity = (account.equity * Decimal("0.01") / price).quantize(Decimal("0.00000001"), rounding=ROUND_DOWN)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {entry['token']}")

    response = client.post(
        "/api/risk/check-position",
        {"account_id": account.pk, "symbol": "BTC-USD", "side": "long", "quantity": str(quantity), "price": "64000"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["decision"], response.json()["reasons"]) == ("approved", [])
    assert counter_drift() == []


@pytest.mark.parametrize("status", ["approved", "open", "rejected"])
def test_a_retry_of_a_seeded_check_answers_its_replay_not_409(tmp_path, redis_client, relaxed_rate_limits, status):
    """The seeded fingerprint is the check's own: the same client_order_id with the same body is the original's
    replay (its decision and current status); a different body under it is still a 409."""
    tokens, _ = seed(tmp_path)
    by_account = {entry["id"]: entry["token"] for entry in tokens["accounts"]}
    position = Position.objects.filter(status=status, instance_id__in=by_account).order_by("pk").first()
    assert position is not None
    assert position.client_order_id
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {by_account[position.instance_id]}")
    body = {
        "account_id": position.instance_id,
        "symbol": position.symbol,
        "side": position.side,
        "quantity": str(position.quantity),
        "price": str(position.requested_price),
        "client_order_id": position.client_order_id,
    }

    replay = client.post("/api/risk/check-position", body, format="json")
    other = client.post("/api/risk/check-position", body | {"price": str(position.requested_price + 1)}, format="json")

    assert replay.status_code == 200, replay.json()
    assert (replay.json()["position_id"], replay.json()["status"]) == (position.pk, status)
    assert replay.json()["decision"] == position.check_decision
    assert other.status_code == 409, other.json()
    assert counter_drift() == []


def test_the_fingerprint_is_the_canonical_json_of_the_check_body():
    """The hand-written text equals json.dumps(body, sort_keys=True) (what stored fingerprints were made of)."""
    import hashlib

    from trading.fingerprints import check_fingerprint

    cases = [
        ("BTC-USD", "long", Decimal("0.12345600"), Decimal("64000.10000000"), False, None),
        ("ETH-USD", "short", Decimal("100"), Decimal("1E+3"), True, 42),
        ('A"B\u00e9', "long", Decimal("0.00000001"), Decimal("12.5"), False, 7),
    ]
    for symbol, side, quantity, price, reduce_only, position_id in cases:
        body = {
            "symbol": symbol,
            "side": side,
            "quantity": format(quantity.normalize(), "f"),
            "price": format(price.normalize(), "f"),
            "reduce_only": reduce_only,
            "position_id": position_id,
        }
        expected = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        assert (
            check_fingerprint(
                symbol=symbol,
                side=side,
                quantity=quantity,
                price=price,
                reduce_only=reduce_only,
                position_id=position_id,
            )
            == expected
        )


@pytest.mark.parametrize("seed_value", range(6))
def test_the_first_seeded_account_takes_the_readme_walkthroughs_order(tmp_path, redis_client, seed_value):
    """The README's bot walkthrough uses the first account of var/demo-tokens.json and checks 0.01 BTC at 60,000.
    The first account's tier and balance were drawn at random: a free or small basic account (about half of the
    draws) rejected that order (max_position_size: 20 % of 1,000-5,000 of equity), and the walkthrough's fill and
    close then answered 409."""
    path = tmp_path / "tokens.json"
    call_command("seed_demo", accounts=2, positions=10, tokens_out=path, seed=seed_value, stdout=StringIO())
    first = json.loads(path.read_text())["accounts"][0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {first['token']}")

    body = {"account_id": first["id"], "symbol": "BTC-USD", "side": "long", "quantity": "0.01", "price": "60000"}
    answer = client.post("/api/risk/check-position", {**body, "dry_run": True}, format="json").json()

    assert (answer["decision"], answer["reasons"]) == ("approved", [])
