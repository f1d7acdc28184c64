"""The open streams' credentials recheck (nija.stream_leases) when PostgreSQL fails under it: a recheck that cannot
read the credentials ends no stream (a database hiccup must not close every stream of the process), and the next
recheck that can read them decides.

In process: the lease keeper of the events process and the check it runs (monitoring.stream_credentials), on an
event loop of the test's own, against the test database and the suite's Redis. The database goes away for the
keeper's worker threads by pointing the connection settings at a closed port (as tests/monitoring/test_health.py
does); the end-to-end stream behaviour is in tests/monitoring/test_stream.py.
"""

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from accounts.models import ApiToken, TokenKind
from accounts.services import api_token_revoke
from accounts.tokens import token_digest
from monitoring.stream_credentials import TOKEN_CREDENTIAL
from nija.stream_leases import LeaseKeeper, lease_take
from tests.accounts.factories import issue_token
from tests.risk.conftest import funded_account

pytestmark = pytest.mark.django_db(transaction=True)

RECHECK_SECONDS = 0.05


@contextmanager
def postgresql_unreachable_for_new_connections() -> Iterator[None]:
    """Every connection opened inside the block fails (the settings dict every thread's wrapper shares points at
    port 1); connections already open are untouched."""
    database = connections.settings["default"]
    port = database["PORT"]
    database["PORT"] = 1
    try:
        yield
    finally:
        database["PORT"] = port


def test_a_recheck_that_cannot_read_the_database_ends_no_stream_and_the_next_one_decides(
    settings, redis_client, caplog
):
    settings.EVENTS_CREDENTIALS_RECHECK_SECONDS = RECHECK_SECONDS
    account = funded_account("100000")
    token = ApiToken.objects.get(digest=token_digest(issue_token(TokenKind.BOT, instance=account)))
    credential = f"{TOKEN_CREDENTIAL}{token.pk}"

    async def stream_lifetime() -> None:
        keeper = LeaseKeeper()
        ended = asyncio.Event()
        lease = lease_take(holder=f"token-{token.pk}", cap=5)
        assert lease is not None
        with postgresql_unreachable_for_new_connections():
            keeper.hold(lease, credential=credential, end=ended.set)
            await asyncio.sleep(20 * RECHECK_SECONDS)
            assert not ended.is_set()  # every recheck failed: the stream goes on
        failed = [r for r in caplog.records if r.getMessage() == "stream_credentials_check_failed"]
        assert len(failed) >= 3

        await asyncio.sleep(10 * RECHECK_SECONDS)
        assert not ended.is_set()  # the database is back and the token stands

        await sync_to_async(api_token_revoke, thread_sensitive=False)(token=token, actor=None)
        await asyncio.wait_for(ended.wait(), timeout=30)  # the next recheck that reads the revoke ends it
        keeper.drop(lease)  # asyncio.run then cancels the keeper's loops

    with caplog.at_level(logging.WARNING, logger="nija.stream_leases"):
        asyncio.run(stream_lifetime())
