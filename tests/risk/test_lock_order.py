"""One declared lock order (risk.locks.LOCK_ORDER) that everything locking follows: the check's PL/pgSQL functions
(the lock-and-read function, and the reserving statement that locks through it), `lock_scope`, and the services that
lock more (a position after its account, a user after its accounts); the check's unlocked reads lock nothing. Read
from the statements each one runs."""

import re
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from risk import locks
from risk.defaults import PORTFOLIO_ID
from risk.locks import LOCK_ORDER_TABLES
from risk.models import CorrelationGroup, CorrelationGroupMember
from risk.services.activation import trading_instance_activation_set, user_activation_set
from risk.services.equity import equity_report
from tests.risk.conftest import funded_account
from tests.risk.services.scenario import fill, reserve

pytestmark = pytest.mark.django_db

SCOPE = list(LOCK_ORDER_TABLES[:4])  # portfolio, symbol, group, account
LOCKS = re.compile(r"FOR (NO KEY )?UPDATE")


@pytest.fixture(autouse=True)
def _grouped_symbol(redis_client) -> None:
    """BTC-USD in a correlation group, so a scope has all four rows."""
    group = CorrelationGroup.objects.create(name="majors", limit_pct=Decimal("0.50"))
    CorrelationGroupMember.objects.create(group=group, symbol="BTC-USD")


def _table(sql: str) -> str:
    """The table a statement locks (`FOR [NO KEY] UPDATE OF t`) or reads first (`FROM t`)."""
    match = re.search(r'FOR (?:NO KEY )?UPDATE OF "?(\w+)"?', sql) or re.search(r'FROM "?(\w+)"?', sql)
    assert match, sql
    return match.group(1)


def _deduped(tables: list[str]) -> list[str]:
    return [table for index, table in enumerate(tables) if index == 0 or tables[index - 1] != table]


def locked_tables(queries: list[dict]) -> list[str]:
    """The tables the statements locked, in the order they ran (a table locked twice in a row counts once)."""
    return _deduped([_table(query["sql"]) for query in queries if LOCKS.search(query["sql"])])


def in_lock_order(tables: list[str]) -> bool:
    positions = [LOCK_ORDER_TABLES.index(table) for table in tables if table in LOCK_ORDER_TABLES]
    return positions == sorted(positions)


def test_lock_scope_locks_portfolio_symbol_group_account_in_that_order():
    account = funded_account("100000")

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        scope = locks.lock_scope(instance_id=account.pk, symbol="BTC-USD")

    assert locked_tables(queries.captured_queries) == SCOPE
    assert (scope.portfolio.pk, scope.symbol_row.pk, scope.group.name, scope.account.pk) == (
        PORTFOLIO_ID,
        "BTC-USD",
        "majors",
        account.pk,
    )


def _source(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [name])
        (source,) = cursor.fetchone()
    return source


@pytest.mark.parametrize(
    "function", ["risk_read_check_scope", "risk_check_scope_json", "risk_check_inputs", "risk_check_inputs_digest"]
)
def test_the_unlocked_reads_of_a_check_lock_and_write_nothing(function):
    source = _source(function).upper()

    assert not re.search(r"FOR (UPDATE|SHARE)|\bINSERT\b|\bUPDATE\b|\bDELETE\b", source)


def test_the_reserving_statement_locks_through_the_check_function_then_moves_counters_in_the_declared_order():
    source = _source("risk_check_reserve")
    updated = re.findall(r"UPDATE (\w+) SET", source)

    assert not LOCKS.search(source)  # every lock it takes is risk_lock_check_rows's (the tests below)
    assert source.index("risk_lock_check_rows(") < source.index("INSERT INTO trading_position")
    assert updated == SCOPE


def _function_source() -> str:
    """The source of the function that takes a check's locks (`risk_lock_check_rows`), which must take the
    portfolio's id as an argument; the two that lock call it and take no lock of their own."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc, pronargs FROM pg_proc WHERE proname = 'risk_lock_check_rows'")
        rows = cursor.fetchall()
    assert len(rows) == 1, "one risk_lock_check_rows, with the portfolio id as an argument"
    (source, arguments), *_ = rows
    assert arguments == 3
    for caller in ("risk_lock_check_scope", "risk_check_reserve"):
        assert "risk_lock_check_rows(p_portfolio_id, p_account_id, p_symbol)" in _source(caller)
        assert not LOCKS.search(_source(caller))
    return source


def _function_locked_table(statement: str) -> str:
    """In the function, `FROM t a ... FOR [NO KEY] UPDATE [OF a]`: the table behind the locked alias (else the
    first)."""
    aliases = dict((alias, table) for table, alias in re.findall(r"(?:FROM|JOIN)\s+(\w+)\s+(\w+)", statement))
    locked_alias = re.search(r"FOR (?:NO KEY )?UPDATE OF (\w+)", statement)
    return aliases[locked_alias.group(1)] if locked_alias else _table(statement)


def test_the_check_function_locks_in_the_declared_order_and_takes_the_portfolio_id():
    source = _function_source()
    statements = [statement for statement in source.split(";") if LOCKS.search(statement)]

    assert _deduped([_function_locked_table(statement) for statement in statements]) == SCOPE
    assert "p.id = p_portfolio_id" in source
    assert not re.search(r"\bp\.id\s*=\s*\d", source)  # no portfolio id written into the function


def test_the_check_function_answers_the_locked_scope():
    account = funded_account("100000")

    with transaction.atomic():
        check = locks.lock_check_scope(instance_id=account.pk, symbol="BTC-USD", client_order_id=None)

    assert check is not None
    assert (check.locked.portfolio.pk, check.locked.group.name, check.locked.account.pk) == (
        PORTFOLIO_ID,
        "majors",
        account.pk,
    )
    assert check.locked.portfolio.equity == Decimal("100000")


def _walk_fill(account):
    position = reserve(account, quantity="0.1")
    return lambda: fill(position, "ex-1", "0.1", "50000")


def _walk_equity_report(account):
    return lambda: equity_report(instance_id=account.pk, equity=Decimal("100100"), cash_balance=None)


def _walk_instance_deactivation(account):
    return lambda: trading_instance_activation_set(instance_id=account.pk, active=False, actor=None, reason="t")


def _walk_user_deactivation(account):
    return lambda: user_activation_set(user_id=account.user_id, active=False, actor=None, reason="t")


def _walk_check(account):
    return lambda: reserve(account, quantity="0.1", now=timezone.now())


@pytest.mark.parametrize(
    ("walk", "expected"),
    [
        (_walk_check, []),  # its locks are the function's (the test above): nothing locked before or after it
        (_walk_fill, [*SCOPE, "trading_position"]),
        (_walk_equity_report, ["risk_portfolio", "accounts_tradinginstance"]),
        (_walk_instance_deactivation, ["risk_portfolio", "accounts_tradinginstance", "accounts_user"]),
        (_walk_user_deactivation, ["risk_portfolio", "accounts_tradinginstance", "accounts_user"]),
    ],
    ids=["check", "fill", "equity report", "instance deactivation", "user deactivation"],
)
def test_each_locking_service_follows_the_declared_order(walk, expected):
    run = walk(funded_account("100000"))

    with CaptureQueriesContext(connection) as queries:
        run()

    tables = [table for table in locked_tables(queries.captured_queries) if table in LOCK_ORDER_TABLES]
    assert tables == expected
    assert in_lock_order(tables)
    if walk is _walk_check:
        assert any("risk_lock_check_scope(" in query["sql"] for query in queries.captured_queries)


def test_account_rows_are_locked_for_no_key_update_so_rows_that_reference_them_are_not_blocked():
    """Every locker of an account row takes FOR NO KEY UPDATE: lockers still exclude each other, and an INSERT
    that references the account (a rejection, an event) does not wait on it (migration risk 0013)."""
    account = funded_account("100000")

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locks.lock_scope(instance_id=account.pk, symbol="BTC-USD")

    account_locks = [q["sql"] for q in queries.captured_queries if 'OF "accounts_tradinginstance"' in q["sql"]]
    assert account_locks
    assert all("FOR NO KEY UPDATE" in sql for sql in account_locks)
    assert "FOR NO KEY UPDATE OF a" in _function_source()
