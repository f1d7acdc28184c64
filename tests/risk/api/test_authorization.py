"""Who may call which risk endpoint, with real tokens: a bot reaches only its own account (another account answers
exactly like an unknown one, 404), never approves or halts (403); no token is a 401; operators act by role
(approver for approve/reject, risk_admin for halt/resume); a price feed may not check. Every refusal writes nothing."""

import json

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from accounts.models import ApiToken, TokenKind
from accounts.services import api_token_revoke
from risk.models import TradingState
from tests.accounts.factories import OperatorFactory, UserFactory, issue_token
from tests.risk.api.test_bad_input import database_state
from tests.risk.conftest import bot_client, funded_account, operator_client
from trading.models import Position

CHECK_URL = "/api/risk/check-position"
APPROVER_NEEDED = "Approving or rejecting positions needs the approver role."
RISK_ADMIN_NEEDED = "Halting or resuming trading needs the risk admin role."
NOT_AUTHENTICATED = {"error": {"code": "not_authenticated", "message": "Authentication credentials were not provided."}}
INVALID_TOKEN = {"error": {"code": "authentication_failed", "message": "Invalid or revoked token."}}
ACCOUNT_NOT_FOUND = {"error": {"code": "account_not_found", "message": "Unknown account."}}
POSITION_NOT_FOUND = {"error": {"code": "position_not_found", "message": "Unknown position."}}


def forbidden(message: str) -> dict:
    return {"error": {"code": "permission_denied", "message": message}}


def post(client: APIClient, path: str, body: dict | None = None):
    return client.post(path, json.dumps(body) if body is not None else "", content_type="application/json")


def check_body(account_id: int, **changes: object) -> dict:
    return {
        "account_id": account_id,
        "symbol": "BTC-USD",
        "side": "long",
        "quantity": "0.1",
        "price": "50000",
    } | changes


class World:
    """Two bots, each with an approved (unfilled), an open (filled) and a pending (30000 >= threshold) position."""

    def __init__(self) -> None:
        self.own = funded_account("1000000")
        self.other = funded_account("1000000")
        self.own_client = bot_client(self.own)
        self.other_client = bot_client(self.other)
        self.positions = {name: self._positions(client, account) for name, client, account in self._bots()}

    def _bots(self):
        return (("own", self.own_client, self.own), ("other", self.other_client, self.other))

    @staticmethod
    def _positions(client: APIClient, account) -> dict[str, Position]:
        def checked(**changes: object) -> int:
            response = post(client, CHECK_URL, check_body(account.pk, **changes))
            assert response.status_code == 200, response.json()
            return response.json()["position_id"]

        approved = checked()
        opened = checked(client_order_id="to-open")
        fill = {"exchange_order_id": f"ex-{account.pk}", "quantity": "0.1", "price": "50000"}
        assert post(client, f"/api/positions/{opened}/fill", fill).status_code == 200
        pending = checked(symbol="ETH-USD", quantity="10", price="3000")
        ids = {"approved": approved, "open": opened, "pending": pending}
        positions = {name: Position.objects.get(pk=pk) for name, pk in ids.items()}
        assert [p.status for p in positions.values()] == ["approved", "open", "pending_approval"]
        return positions

    def position(self, whose: str, name: str) -> int:
        return self.positions[whose][name].pk


@pytest.fixture
def world(relaxed_rate_limits, redis_client) -> World:
    return World()


# ---------------------------------------------------------------------------------------------- bots
def bot_calls_on(world: World, account_id: int, position: dict[str, int]) -> dict[str, tuple[str, dict | None]]:
    """Every bot call that names an account or a position, aimed at `account_id` / `position`."""
    return {
        "check": (CHECK_URL, check_body(account_id)),
        "check-dry-run": (CHECK_URL, check_body(account_id, dry_run=True)),
        "check-idempotent": (CHECK_URL, check_body(account_id, client_order_id="to-open")),
        "check-legacy": (CHECK_URL, {"account_id": account_id, "position_size": "5000"}),
        "check-reduce-only": (
            CHECK_URL,
            check_body(account_id, reduce_only=True, position_id=position["open"], quantity="0.05"),
        ),
        "fill": (
            f"/api/positions/{position['approved']}/fill",
            {"exchange_order_id": "ex-x", "quantity": "0.1", "price": "50000"},
        ),
        "close": (f"/api/positions/{position['open']}/close", {"client_close_id": "close-x", "exit_price": "51000"}),
        "cancel": (f"/api/positions/{position['approved']}/cancel", None),
        "cancel-pending": (f"/api/positions/{position['pending']}/cancel", None),
        "metrics": (f"/api/accounts/{account_id}/metrics", {"equity": "1"}),
    }


BOT_CALLS = [
    "check",
    "check-dry-run",
    "check-idempotent",
    "check-legacy",
    "check-reduce-only",
    "fill",
    "close",
    "cancel",
    "cancel-pending",
    "metrics",
]
EXPECTED_404 = {
    "fill": POSITION_NOT_FOUND,
    "close": POSITION_NOT_FOUND,
    "cancel": POSITION_NOT_FOUND,
    "cancel-pending": POSITION_NOT_FOUND,
}


@pytest.mark.django_db
@pytest.mark.parametrize("call", BOT_CALLS)
def test_a_bot_cannot_touch_another_account_and_cannot_tell_it_from_an_unknown_one(world, call):
    others = {name: world.position("other", name) for name in ("approved", "open", "pending")}
    unknown = {name: pk + 10_000 for name, pk in others.items()}
    before = database_state()

    path, body = bot_calls_on(world, world.other.pk, others)[call]
    on_other = post(world.own_client, path, body)
    path, body = bot_calls_on(world, world.other.pk + 10_000, unknown)[call]
    on_unknown = post(world.own_client, path, body)

    assert on_other.status_code == 404, on_other.json()
    assert on_other.json() == EXPECTED_404.get(call, ACCOUNT_NOT_FOUND)
    assert (on_unknown.status_code, on_unknown.json()) == (on_other.status_code, on_other.json())
    assert database_state() == before


@pytest.mark.django_db
def test_a_reduce_only_check_of_another_bots_position_under_its_own_account_is_404(world):
    before = database_state()

    response = post(
        world.own_client,
        CHECK_URL,
        check_body(world.own.pk, reduce_only=True, position_id=world.position("other", "open"), quantity="0.05"),
    )

    assert response.status_code == 404
    assert response.json() == POSITION_NOT_FOUND
    assert database_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("call", BOT_CALLS)
def test_the_same_calls_on_its_own_account_succeed(world, call):
    """The control for the 404s above: the same requests aimed at the bot's own account are accepted."""
    own = {name: world.position("own", name) for name in ("approved", "open", "pending")}
    path, body = bot_calls_on(world, world.own.pk, own)[call]

    response = post(world.own_client, path, body)

    assert response.status_code == 200, response.json()


BOT_FORBIDDEN = [
    pytest.param("approve", APPROVER_NEEDED, id="approve"),
    pytest.param("reject", APPROVER_NEEDED, id="reject"),
    pytest.param("halt", RISK_ADMIN_NEEDED, id="halt"),
    pytest.param("halt-portfolio", RISK_ADMIN_NEEDED, id="halt-portfolio"),
    pytest.param("resume", RISK_ADMIN_NEEDED, id="resume"),
]


def operator_call(world: World, action: str, *, whose: str = "own") -> tuple[str, dict | None]:
    account_id = world.own.pk if whose == "own" else world.other.pk
    return {
        "approve": (f"/api/positions/{world.position(whose, 'pending')}/approve", {"reason": "ok"}),
        "reject": (f"/api/positions/{world.position(whose, 'pending')}/reject", {"reason": "no"}),
        "halt": ("/api/risk/halt", {"account_id": account_id, "mode": "halted", "reason": "drill"}),
        "halt-portfolio": ("/api/risk/halt", {"mode": "reducing", "reason": "drill"}),
        "resume": ("/api/risk/resume", {"account_id": account_id, "reason": "over"}),
        "cancel": (f"/api/positions/{world.position(whose, 'approved')}/cancel", None),
    }[action]


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "message"), BOT_FORBIDDEN)
def test_a_bot_cannot_approve_reject_halt_or_resume_even_its_own_account(world, action, message):
    before = database_state()

    response = post(world.own_client, *operator_call(world, action))

    assert response.status_code == 403
    assert response.json() == forbidden(message)
    assert database_state() == before


# ---------------------------------------------------------------------------------------------- no or bad token
ALL_WRITES = ["check", "fill", "close", "cancel", "metrics", "approve", "reject", "halt", "resume"]


def any_call(world: World, action: str) -> tuple[str, dict | None]:
    if action in ("check", "fill", "close", "cancel", "metrics"):
        own = {name: world.position("own", name) for name in ("approved", "open", "pending")}
        return bot_calls_on(world, world.own.pk, own)[action]
    return operator_call(world, action)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ALL_WRITES)
def test_no_token_is_401_with_the_bearer_challenge(world, action):
    before = database_state()

    response = post(APIClient(), *any_call(world, action))

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert database_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("action", ALL_WRITES)
@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + "A" * 43,  # the right shape, no such token
        "Bearer not-a-token",
        "Token " + "A" * 43,  # another scheme: no credentials at all
    ],
    ids=["unknown-token", "malformed-token", "other-scheme"],
)
def test_an_unknown_or_malformed_token_is_401(world, action, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    before = database_state()

    response = post(client, *any_call(world, action))

    assert response.status_code == 401
    assert response.json() == (NOT_AUTHENTICATED if header.startswith("Token") else INVALID_TOKEN)
    assert database_state() == before


@pytest.mark.django_db
def test_a_revoked_bot_token_is_401_at_once(world, django_capture_on_commit_callbacks):
    raw = issue_token(TokenKind.BOT, instance=world.own)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert post(client, CHECK_URL, check_body(world.own.pk, dry_run=True)).status_code == 200  # cached now
    token = ApiToken.objects.filter(instance=world.own).latest("pk")
    with django_capture_on_commit_callbacks(execute=True):  # the tombstone is written after commit
        api_token_revoke(token=token, actor=OperatorFactory(), reason="leaked")
    before = database_state()

    response = post(client, CHECK_URL, check_body(world.own.pk))

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN
    assert database_state() == before


# ---------------------------------------------------------------------------------------------- operators
ROLE_CASES = [
    # (roles, action, allowed)
    pytest.param((), "approve", False, id="no-role-approve"),
    pytest.param(("viewer",), "approve", False, id="viewer-approve"),
    pytest.param(("approver",), "approve", True, id="approver-approve"),
    pytest.param(("risk_admin",), "approve", True, id="risk_admin-approve"),
    pytest.param((), "reject", False, id="no-role-reject"),
    pytest.param(("viewer",), "reject", False, id="viewer-reject"),
    pytest.param(("approver",), "reject", True, id="approver-reject"),
    pytest.param((), "cancel", False, id="no-role-cancel"),
    pytest.param(("viewer",), "cancel", False, id="viewer-cancel"),
    pytest.param(("approver",), "cancel", True, id="approver-cancel"),
    pytest.param((), "halt", False, id="no-role-halt"),
    pytest.param(("viewer",), "halt", False, id="viewer-halt"),
    pytest.param(("approver",), "halt", False, id="approver-halt"),
    pytest.param(("risk_admin",), "halt", True, id="risk_admin-halt"),
    pytest.param(("approver",), "halt-portfolio", False, id="approver-halt-portfolio"),
    pytest.param(("risk_admin",), "halt-portfolio", True, id="risk_admin-halt-portfolio"),
    pytest.param((), "resume", False, id="no-role-resume"),
    pytest.param(("approver",), "resume", False, id="approver-resume"),
    pytest.param(("risk_admin",), "resume", True, id="risk_admin-resume"),
]
FORBIDDEN_MESSAGE = {
    "approve": APPROVER_NEEDED,
    "reject": APPROVER_NEEDED,
    "cancel": APPROVER_NEEDED,
    "halt": RISK_ADMIN_NEEDED,
    "halt-portfolio": RISK_ADMIN_NEEDED,
    "resume": RISK_ADMIN_NEEDED,
}


def assert_effect(world: World, action: str, operator, body: dict) -> None:
    """What an allowed operator action did, exactly (on the other bot's rows: operators are not scoped)."""
    pending = Position.objects.get(pk=world.position("other", "pending"))
    approved = Position.objects.get(pk=world.position("other", "approved"))
    if action in ("approve", "reject"):
        assert body["status"] == pending.status == {"approve": "approved", "reject": "rejected"}[action]
        assert pending.decided_by_id == operator.pk
    elif action == "cancel":
        assert body["status"] == approved.status == "cancelled"
    elif action == "halt":
        assert body["state"] == "halted"
        assert body["changed_by"] == operator.username
        assert body["cancelled_position_ids"] == [approved.pk, pending.pk]
        assert TradingState.objects.get(instance=world.other).state == "halted"
    elif action == "halt-portfolio":
        assert (body["scope"], body["state"], body["cancelled_position_ids"]) == ("portfolio", "reducing", [])
        assert TradingState.objects.get(instance__isnull=True).state == "reducing"
    else:
        assert (body["state"], body["previous"]) == ("active", "active")


@pytest.mark.django_db
@pytest.mark.parametrize(("roles", "action", "allowed"), ROLE_CASES)
def test_operators_act_by_role(world, roles, action, allowed):
    client, operator = operator_client(*roles)
    before = database_state()

    response = post(client, *operator_call(world, action, whose="other"))

    if allowed:
        assert response.status_code == 200, response.json()
        assert_effect(world, action, operator, response.json())
    else:
        assert response.status_code == 403
        assert response.json() == forbidden(FORBIDDEN_MESSAGE[action])
        assert database_state() == before


@pytest.mark.django_db
def test_an_approver_approves_with_an_empty_body(world):
    client, _ = operator_client("approver")

    response = client.post(f"/api/positions/{world.position('other', 'pending')}/approve")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "approved"
    assert response.json()["decision_reason"] == ""


@pytest.mark.django_db
@pytest.mark.parametrize("call", ["check", "check-legacy", "fill", "close", "metrics"])
@pytest.mark.parametrize("kind", ["operator", "feed"])
def test_operator_and_feed_tokens_cannot_use_bot_endpoints(world, kind, call):
    """Bot endpoints are for bot tokens only, even for an operator with every role (a feed has no account)."""
    if kind == "operator":
        client, _ = operator_client("approver", "risk_admin")
    else:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(TokenKind.FEED, user=UserFactory())}")
    own = {name: world.position("own", name) for name in ("approved", "open", "pending")}
    before = database_state()

    response = post(client, *bot_calls_on(world, world.own.pk, own)[call])

    assert response.status_code == 403
    assert response.json() == forbidden("Bot tokens only.")
    assert database_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "message"), [*BOT_FORBIDDEN, pytest.param("cancel", APPROVER_NEEDED, id="cancel")])
def test_a_feed_token_cannot_approve_halt_or_cancel(world, action, message):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(TokenKind.FEED, user=UserFactory())}")
    before = database_state()

    response = post(client, *operator_call(world, action))

    assert response.status_code == 403
    assert response.json() == forbidden(message)
    assert database_state() == before


@pytest.mark.django_db
def test_an_operator_session_approves_by_role_and_needs_a_csrf_token(world):
    """The admin session works like an operator token (role checked) and, being a cookie, needs the CSRF token."""
    approver = OperatorFactory()
    approver.groups.add(Group.objects.get(name="approver"))
    path = f"/api/positions/{world.position('other', 'pending')}/approve"
    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(approver)
    before = database_state()

    without_csrf = post(strict, path, {"reason": "ok"})

    assert without_csrf.status_code == 403
    assert without_csrf.json() == forbidden("CSRF Failed: CSRF cookie not set.")
    assert database_state() == before

    relaxed = APIClient()
    relaxed.force_login(approver)
    assert post(relaxed, path, {"reason": "ok"}).status_code == 200
    assert Position.objects.get(pk=world.position("other", "pending")).decided_by_id == approver.pk


@pytest.mark.django_db
def test_a_staff_session_without_the_role_is_403(world):
    client = APIClient()
    client.force_login(OperatorFactory())
    before = database_state()

    response = post(client, *operator_call(world, "approve", whose="other"))

    assert response.status_code == 403
    assert response.json() == forbidden(APPROVER_NEEDED)
    assert database_state() == before
