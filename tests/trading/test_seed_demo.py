"""seed_demo at small scale: the data is what the services would have written (counters equal sums, trades add
up to positions and days), the tokens in the file authenticate, secrets are encrypted, and re-running adds a
fresh batch."""

import datetime
import json
import stat
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from accounts.authentication import BearerTokenAuthentication
from accounts.models import ApiToken, BrokerCredential, TokenKind, TradingInstance, User, UserPermission
from accounts.tokens import token_digest
from trading.models import EXPOSURE_STATUSES, DailyStatistic, Fill, Position, PositionStatus, Trade

pytestmark = pytest.mark.django_db

ACCOUNTS = 6
POSITIONS = 125  # not a multiple of ACCOUNTS: the remainder is spread over the first accounts


def seed(tmp_path, name: str = "tokens.json", seed: int | None = 11, **options) -> tuple[dict, str]:
    out = StringIO()
    path = tmp_path / name
    call_command(
        "seed_demo",
        accounts=options.get("accounts", ACCOUNTS),
        positions=options.get("positions", POSITIONS),
        tokens_out=path,
        seed=seed,
        stdout=out,
    )
    return json.loads(path.read_text()), out.getvalue()


@pytest.fixture
def seeded(tmp_path, redis_client) -> dict:
    tokens, _ = seed(tmp_path)
    return tokens


def test_tokens_file_shape_and_mode(tmp_path, redis_client):
    tokens, output = seed(tmp_path)
    assert set(tokens) == {"operator_token", "accounts"}
    assert len(tokens["accounts"]) == ACCOUNTS
    assert all(set(entry) == {"id", "token"} for entry in tokens["accounts"])
    assert {entry["id"] for entry in tokens["accounts"]} == set(TradingInstance.objects.values_list("id", flat=True))
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    assert f"{ACCOUNTS} accounts, {POSITIONS} positions" in output
    assert " s\n" in output  # the time it took


def test_bot_tokens_authenticate_as_their_instance(seeded):
    authentication = BearerTokenAuthentication()
    for entry in seeded["accounts"]:
        token = ApiToken.objects.get(digest=token_digest(entry["token"]))
        assert (token.kind, token.instance_id, token.revoked_at) == (TokenKind.BOT, entry["id"], None)
        request = APIRequestFactory().get("/api/health", HTTP_AUTHORIZATION=f"Bearer {entry['token']}")
        user, principal = authentication.authenticate(request)
        assert (principal.kind, principal.instance_id, user.pk) == ("bot", entry["id"], token.user_id)


def test_operator_token_is_a_staff_operators(seeded):
    request = APIRequestFactory().get("/api/health", HTTP_AUTHORIZATION=f"Bearer {seeded['operator_token']}")
    user, principal = BearerTokenAuthentication().authenticate(request)
    assert principal.kind == "operator"
    assert principal.instance_id is None
    operator = User.objects.get(pk=user.pk)
    assert operator.is_staff
    assert not operator.is_superuser
    assert set(operator.groups.values_list("name", flat=True)) == {"viewer", "approver", "risk_admin"}


def test_counters_equal_the_sums_over_held_positions(seeded):
    held = Q(positions__status__in=EXPOSURE_STATUSES)
    rows = TradingInstance.objects.annotate(
        held_notional=Sum("positions__notional", filter=held), held_count=Count("positions", filter=held)
    )
    assert rows.count() == ACCOUNTS
    for instance in rows:
        assert instance.exposure == (instance.held_notional or Decimal(0))
        assert instance.position_count == instance.held_count
    assert sum(instance.position_count for instance in rows) > 0


def test_positions_are_spread_and_consistent(seeded):
    per_instance = sorted(Position.objects.values("instance").annotate(n=Count("id")).values_list("n", flat=True))
    assert per_instance == [20, 21, 21, 21, 21, 21]
    assert Position.objects.values("symbol").distinct().count() >= 3
    statuses = set(Position.objects.values_list("status", flat=True))
    assert {PositionStatus.OPEN, PositionStatus.CLOSED, PositionStatus.REJECTED} <= statuses
    for position in Position.objects.all():
        assert position.notional > 0
        if position.status in (PositionStatus.OPEN, PositionStatus.CLOSED):
            fill = position.fills.get()  # the notional is re-fixed at the fill's value
            assert position.notional == (fill.quantity * fill.price).quantize(Decimal("1e-8"), "ROUND_UP")
        if position.status == PositionStatus.OPEN:
            assert position.open_cost == position.notional
        if position.status == PositionStatus.REJECTED:
            assert position.reasons[0]["code"] == "max_position_size"
            assert Decimal(position.reasons[0]["value"]) > Decimal(position.reasons[0]["limit"])


def test_fills_and_trades_add_up_to_their_positions(seeded):
    filled = Position.objects.filter(status__in=[PositionStatus.OPEN, PositionStatus.CLOSED])
    assert Fill.objects.count() == filled.count()
    for position in filled.annotate(fill_quantity=Sum("fills__quantity"), fill_fees=Sum("fills__fees")):
        assert position.fill_quantity == position.filled_quantity == position.quantity
    closed = Position.objects.filter(status=PositionStatus.CLOSED).annotate(
        traded=Sum("trades__quantity"), pnl=Sum("trades__pnl"), fees_closing=Sum("trades__fees")
    )
    assert closed.count() > 0
    for position in closed:
        fill_fees = position.fills.get().fees
        assert position.traded == position.closed_quantity == position.quantity
        assert position.pnl == position.realized_pnl
        assert position.fees == fill_fees + position.fees_closing
        assert position.closed_at >= position.opened_at
    assert not Trade.objects.exclude(position__status=PositionStatus.CLOSED).exists()


def test_daily_statistics_add_up_the_trades_of_each_day(seeded):
    today = timezone.now().astimezone(datetime.UTC).date()
    assert DailyStatistic.objects.count() == ACCOUNTS * 30
    assert not DailyStatistic.objects.filter(date__gte=today).exists()
    assert not DailyStatistic.objects.filter(date__lt=today - datetime.timedelta(days=30)).exists()
    for statistic in DailyStatistic.objects.all():
        start = datetime.datetime.combine(statistic.date, datetime.time(), tzinfo=datetime.UTC)
        trades = Trade.objects.filter(
            instance=statistic.instance_id, closed_at__gte=start, closed_at__lt=start + datetime.timedelta(days=1)
        )
        pnls = list(trades.values_list("pnl", flat=True))
        assert statistic.trades == len(pnls)
        assert statistic.wins == sum(1 for pnl in pnls if pnl > 0)
        assert statistic.losses == sum(1 for pnl in pnls if pnl < 0)
        assert statistic.realized_pnl == sum(pnls, Decimal(0))
        assert statistic.gross_profit - statistic.gross_loss == statistic.realized_pnl


def test_instances_can_trade_at_once(seeded):
    now = timezone.now()
    today = now.astimezone(datetime.UTC).date()
    for instance in TradingInstance.objects.select_related("user__trading_permission", "broker_credential"):
        assert instance.status == "running"
        assert instance.is_active
        assert now - instance.equity_reported_at < datetime.timedelta(minutes=1)
        assert now - instance.last_heartbeat < datetime.timedelta(minutes=1)
        assert instance.day_start_date == today
        assert instance.peak_equity >= instance.equity > 0
        assert (instance.peak_equity - instance.equity) / instance.peak_equity < Decimal("0.10")  # drawdown
        assert instance.equity - instance.day_start_equity > -Decimal("0.03") * instance.day_start_equity
        assert instance.exposure <= Decimal("0.4") * instance.equity  # account limit is 0.90
        permission = instance.user.trading_permission
        assert permission.can_trade
        assert permission.allowed_symbols == []
        assert permission.max_open_positions >= instance.position_count + 100
        assert permission.max_position_size >= Decimal("0.2") * instance.starting_balance
        assert instance.broker_credential.user_id == instance.user_id
    assert UserPermission.objects.count() == ACCOUNTS


def test_credentials_are_ciphertext_in_the_database(seeded):
    credential = BrokerCredential.objects.first()
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key, api_secret FROM accounts_brokercredential WHERE id = %s", [credential.pk])
        raw_key, raw_secret = cursor.fetchone()
    assert credential.api_key not in raw_key
    assert credential.api_secret not in raw_secret
    assert raw_key.startswith("gAAAA")  # a Fernet token
    assert credential.api_key_last4 == credential.api_key[-4:]


def test_rerun_adds_a_fresh_batch(tmp_path, redis_client):
    first, _ = seed(tmp_path, "first.json")
    second, output = seed(tmp_path, "second.json")
    assert TradingInstance.objects.count() == 2 * ACCOUNTS
    assert Position.objects.count() == 2 * POSITIONS
    assert User.objects.filter(is_staff=True).count() == 2
    assert not {e["id"] for e in first["accounts"]} & {e["id"] for e in second["accounts"]}
    assert first["operator_token"] != second["operator_token"]
    assert "seed_demo batch" in output


def test_same_seed_same_data(tmp_path, redis_client):
    seed(tmp_path, "first.json", seed=5)
    seed(tmp_path, "second.json", seed=5)
    batches = {}
    for instance in TradingInstance.objects.order_by("id"):
        batch = instance.name.split("-")[1]
        rows = instance.positions.order_by("id").values_list("symbol", "side", "quantity", "status", "notional")
        batches.setdefault(batch, []).append((instance.starting_balance, list(rows)))
    first, second = batches.values()
    assert first == second


def test_invalid_arguments_write_nothing(tmp_path):
    with pytest.raises(CommandError, match="--accounts"):
        call_command("seed_demo", accounts=0, positions=10, tokens_out=tmp_path / "t.json")
    assert not User.objects.exists()
    assert not (tmp_path / "t.json").exists()
