"""Bearer token authentication through a test-only DRF view: 401s, warm lookups without queries, Redis down."""

import copy
from datetime import timedelta

import pytest
import structlog
from django.conf import settings
from django.test import override_settings
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AUTH_FAILURE_LIMIT
from accounts.caching import set_if_newer
from accounts.models import ApiToken, TokenKind, User
from accounts.permissions import IsBot, principal_instance_id
from accounts.selectors import api_token_get_by_digest, api_token_version, cached_token_from
from accounts.services import api_token_create, api_token_revoke, user_delete, user_update
from accounts.tokens import token_digest
from nija.cache import TOKEN
from risk.services.activation import trading_instance_activation_set, user_activation_set
from tests.accounts.factories import OperatorFactory, TradingInstanceFactory, UserFactory, issue_token

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


class WhoAmIApi(APIView):
    def get(self, request):
        principal = request.auth
        return Response(
            {
                "user_id": request.user.pk,
                "username": request.user.username,
                "is_staff": request.user.is_staff,
                "kind": principal.kind,
                "instance_id": principal.instance_id,
                "tier": principal.tier,
                "context": structlog.contextvars.get_contextvars(),
            }
        )


class BotOnlyApi(APIView):
    permission_classes = [IsBot]

    def get(self, request):
        return Response({"instance_id": principal_instance_id(request)})


class FillLikeApi(APIView):
    """A view that serves deactivated accounts' bots, as fills and closes do."""

    permission_classes = [IsBot]
    allows_inactive_account = True

    def get(self, request):
        return Response({"instance_id": principal_instance_id(request), "user_active": request.user.is_active})


class CanViewUsersApi(APIView):
    def get(self, request):
        return Response({"has_perm": request.user.has_perm("accounts.view_user")})


urlpatterns = [
    path("whoami", WhoAmIApi.as_view()),
    path("bot-only", BotOnlyApi.as_view()),
    path("fill-like", FillLikeApi.as_view()),
    path("can-view-users", CanViewUsersApi.as_view()),
]


@pytest.fixture(autouse=True)
def _clean(redis_client):
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


def _get(client, raw_token, url="/whoami"):
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw_token}")


def test_a_bot_token_resolves_to_its_user_and_instance(api_client):
    instance = TradingInstanceFactory()
    raw = issue_token(TokenKind.BOT, instance=instance)

    response = _get(api_client, raw)

    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == instance.user_id
    assert body["username"] == instance.user.username
    assert (body["kind"], body["instance_id"], body["tier"]) == ("bot", instance.pk, "pro")
    assert body["context"]["user_id"] == instance.user_id
    assert body["context"]["account_id"] == instance.pk


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-token", "Bearer " + "x" * 43, "Bearer", "Bearer a b", "Bearer \u00e9" * 2],
)
def test_unknown_or_malformed_tokens_answer_401_with_www_authenticate(api_client, header):
    response = api_client.get("/whoami", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "authentication_failed"


def test_no_credentials_answer_401_with_www_authenticate(api_client):
    response = api_client.get("/whoami")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_revoked_token_answers_401_even_when_it_was_cached(api_client, django_capture_on_commit_callbacks):
    raw = issue_token(TokenKind.BOT)
    assert _get(api_client, raw).status_code == 200  # now cached
    token = ApiToken.objects.get(digest=token_digest(raw))

    with django_capture_on_commit_callbacks(execute=True):
        api_token_revoke(token=token, actor=OperatorFactory(), reason="leaked")

    response = _get(api_client, raw)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid or revoked token."
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_a_revoked_token_answers_401_from_postgresql_when_not_cached(api_client):
    raw = issue_token(TokenKind.FEED)
    api_token_revoke(token=ApiToken.objects.get(digest=token_digest(raw)), actor=None)

    assert _get(api_client, raw).status_code == 401


def test_a_warm_lookup_costs_no_query(api_client, django_assert_num_queries):
    raw = issue_token(TokenKind.BOT)
    assert _get(api_client, raw).status_code == 200

    with django_assert_num_queries(0):
        response = _get(api_client, raw)

    assert response.status_code == 200
    assert TOKEN.get(token_digest(raw))["kind"] == "bot"


def test_a_cold_lookup_costs_one_select_and_at_most_one_touch(api_client, django_assert_num_queries, redis_client):
    raw = issue_token(TokenKind.BOT)

    with django_assert_num_queries(2):  # SELECT token+user, UPDATE last_used_at
        assert _get(api_client, raw).status_code == 200
    redis_client.flushdb()
    with django_assert_num_queries(1):  # touched less than a minute ago: SELECT only
        assert _get(api_client, raw).status_code == 200


def test_last_used_at_is_written_at_most_once_a_minute(api_client, redis_client):
    raw = issue_token(TokenKind.BOT)
    token = ApiToken.objects.get(digest=token_digest(raw))
    _get(api_client, raw)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None

    redis_client.flushdb()
    _get(api_client, raw)
    token.refresh_from_db()
    assert token.last_used_at == first

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(seconds=61))
    redis_client.flushdb()
    _get(api_client, raw)
    token.refresh_from_db()
    assert token.last_used_at > first - timedelta(seconds=1)
    assert token.last_used_at <= timezone.now()


def test_tokens_resolve_through_postgresql_when_redis_is_unreachable(api_client):
    raw = issue_token(TokenKind.BOT)
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = "redis://127.0.0.1:1/0"

    with override_settings(CACHES=caches):
        first = _get(api_client, raw)
        second = _get(api_client, raw)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["kind"] == "bot"


def test_operator_tokens_need_a_staff_user(api_client, django_capture_on_commit_callbacks):
    operator = OperatorFactory()
    raw = issue_token(TokenKind.OPERATOR, user=operator)
    assert _get(api_client, raw).json()["is_staff"] is True  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        user_update(user=operator, actor=None, reason="left the desk", is_staff=False)

    assert TOKEN.get(token_digest(raw))["is_staff"] is False  # rewritten after commit, not deleted by hand
    assert _get(api_client, raw).status_code == 401


def test_a_user_deactivated_while_cached_is_refused_at_once(api_client, django_capture_on_commit_callbacks):
    instance = TradingInstanceFactory()
    raw = issue_token(TokenKind.BOT, instance=instance)
    assert _get(api_client, raw).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        user_activation_set(user_id=instance.user_id, active=False, actor=OperatorFactory(), reason="fraud")

    response = _get(api_client, raw)
    # Its bot may still report fills and closes: every other view answers 403 account_inactive, not a failed login.
    assert (response.status_code, response.json()["error"]["code"]) == (403, "account_inactive")


@pytest.mark.parametrize("deactivated", ["user", "instance"])
def test_a_deactivated_accounts_bot_reaches_only_the_views_that_accept_it(
    api_client, django_capture_on_commit_callbacks, deactivated
):
    instance = TradingInstanceFactory()
    raw = issue_token(TokenKind.BOT, instance=instance)
    assert _get(api_client, raw, "/bot-only").status_code == 200  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        if deactivated == "user":
            user_activation_set(user_id=instance.user_id, active=False, actor=None, reason="fraud")
        else:
            trading_instance_activation_set(instance_id=instance.pk, active=False, actor=None, reason="retired")
    refused = [_get(api_client, raw, url) for url in ("/whoami", "/bot-only", "/can-view-users")]
    allowed = _get(api_client, raw, "/fill-like")
    TOKEN.delete(token_digest(raw))
    cold = [_get(api_client, raw, "/bot-only"), _get(api_client, raw, "/fill-like")]

    for response in [*refused, cold[0]]:
        assert (response.status_code, response.json()["error"]["code"]) == (403, "account_inactive")
    for response in (allowed, cold[1]):
        assert (response.status_code, response.json()) == (
            200,
            {"instance_id": instance.pk, "user_active": deactivated != "user"},
        )


def test_a_reader_that_loaded_a_bot_token_before_its_instance_was_deactivated_cannot_cache_it_back(
    api_client, django_capture_on_commit_callbacks
):
    instance = TradingInstanceFactory()
    raw = issue_token(TokenKind.BOT, instance=instance)
    digest = token_digest(raw)
    stale_row = api_token_get_by_digest(digest=digest)  # a request stalled here, before the deactivation commits

    with django_capture_on_commit_callbacks(execute=True):
        trading_instance_activation_set(instance_id=instance.pk, active=False, actor=None, reason="retired")
    refilled = set_if_newer(TOKEN, digest, cached_token_from(stale_row).to_json(), version=api_token_version(stale_row))

    assert refilled is False
    assert TOKEN.get(digest)["instance_active"] is False
    assert _get(api_client, raw).status_code == 403


def test_a_tier_change_is_seen_at_once(api_client, django_capture_on_commit_callbacks):
    instance = TradingInstanceFactory()
    raw = issue_token(TokenKind.BOT, instance=instance)
    assert _get(api_client, raw).json()["tier"] == "pro"

    with django_capture_on_commit_callbacks(execute=True):
        user_update(user=instance.user, actor=None, reason="downgrade", subscription_tier="basic")

    assert _get(api_client, raw).json()["tier"] == "basic"


def test_a_reader_that_loaded_the_user_before_an_edit_cannot_cache_it_back(
    api_client, django_capture_on_commit_callbacks
):
    operator = OperatorFactory()
    raw = issue_token(TokenKind.OPERATOR, user=operator)
    digest = token_digest(raw)
    stale_row = api_token_get_by_digest(digest=digest)  # a request stalled here, before the edit commits

    with django_capture_on_commit_callbacks(execute=True):
        user_update(user=operator, actor=None, reason="left the desk", is_staff=False)
    refilled = set_if_newer(TOKEN, digest, cached_token_from(stale_row).to_json(), version=api_token_version(stale_row))

    assert refilled is False
    assert _get(api_client, raw).status_code == 401


def test_a_deleted_users_cached_token_is_refused_at_once(api_client, django_capture_on_commit_callbacks):
    user = UserFactory()
    raw = issue_token(TokenKind.FEED, user=user)
    assert _get(api_client, raw).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        user_delete(user=user, actor=None, reason="closed")

    assert TOKEN.get(token_digest(raw))["revoked"] is True
    assert _get(api_client, raw).status_code == 401


def test_has_perm_never_trusts_a_cached_superuser_flag(api_client):
    operator = OperatorFactory(is_superuser=True)
    raw = issue_token(TokenKind.OPERATOR, user=operator)
    assert _get(api_client, raw, "/can-view-users").json() == {"has_perm": True}  # now cached

    User.objects.filter(pk=operator.pk).update(is_superuser=False)  # no service: no cache refresh at all

    assert _get(api_client, raw, "/can-view-users").json() == {"has_perm": False}
    assert "is_superuser" not in TOKEN.get(token_digest(raw))


@pytest.mark.parametrize("kind", [TokenKind.FEED, TokenKind.OPERATOR])
def test_an_inactive_user_cannot_authenticate(api_client, kind):
    user = (OperatorFactory if kind == TokenKind.OPERATOR else UserFactory)(is_active=False)
    raw = issue_token(kind, user=user)

    assert _get(api_client, raw).status_code == 401
    assert _get(api_client, raw, "/fill-like").status_code == 401  # only bot tokens reach such views


def test_is_bot_rejects_feed_and_operator_tokens(api_client):
    instance = TradingInstanceFactory()
    bot = _get(api_client, issue_token(TokenKind.BOT, instance=instance), "/bot-only")
    feed = _get(api_client, issue_token(TokenKind.FEED), "/bot-only")
    operator = _get(api_client, issue_token(TokenKind.OPERATOR), "/bot-only")

    assert (bot.status_code, bot.json()) == (200, {"instance_id": instance.pk})
    assert (feed.status_code, operator.status_code) == (403, 403)


def test_the_raw_token_is_never_stored_or_cached(api_client, redis_client):
    token, raw = api_token_create(kind=TokenKind.FEED, user=UserFactory(), name="feed")
    _get(api_client, raw)

    assert token.digest == token_digest(raw)
    assert raw not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    for key in redis_client.scan_iter("*"):
        assert raw.encode() not in key
        assert raw.encode() not in (redis_client.dump(key) or b"")


def test_the_raw_token_never_reaches_the_logs_or_an_error_body(api_client, caplog, capfd):
    raw = issue_token(TokenKind.BOT)
    revoked_raw = issue_token(TokenKind.FEED)
    api_token_revoke(token=ApiToken.objects.get(digest=token_digest(revoked_raw)), actor=None)

    with caplog.at_level("DEBUG"):
        ok = _get(api_client, raw)
        refused = _get(api_client, revoked_raw)

    assert (ok.status_code, refused.status_code) == (200, 401)
    captured = capfd.readouterr()  # fd level: StdoutHandler writes to sys.__stdout__, which capsys cannot see
    for secret in (raw, revoked_raw):
        assert secret not in caplog.text
        assert secret not in captured.out + captured.err
        assert secret not in ok.content.decode() + refused.content.decode()


UNKNOWN_RAW = "u" * 43  # well-formed, never issued


def test_an_unknown_token_is_cached_briefly_so_repeating_it_costs_no_query(
    api_client, django_assert_num_queries, redis_client
):
    with django_assert_num_queries(1):
        assert _get(api_client, UNKNOWN_RAW).status_code == 401
    with django_assert_num_queries(0):
        assert _get(api_client, UNKNOWN_RAW).status_code == 401

    digest = token_digest(UNKNOWN_RAW)
    assert TOKEN.get(digest) == {"unknown": True, "version": 0}
    assert 0 < redis_client.ttl(TOKEN.raw_key(digest)) <= 30


def test_a_revoked_token_read_from_postgresql_is_tombstoned(api_client, django_assert_num_queries):
    raw = issue_token(TokenKind.FEED)
    api_token_revoke(token=ApiToken.objects.get(digest=token_digest(raw)), actor=None)  # no commit: no tombstone

    with django_assert_num_queries(1):
        assert _get(api_client, raw).status_code == 401
    with django_assert_num_queries(0):
        assert _get(api_client, raw).status_code == 401


@pytest.mark.parametrize("marker_first", [True, False])
def test_a_new_token_is_never_shadowed_by_an_unknown_marker(
    api_client, django_capture_on_commit_callbacks, marker_first
):
    """A request that looked the digest up before the token committed writes `unknown` before or after the
    token's own post-commit write: either way the token authenticates at once."""
    user = UserFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        token, raw = api_token_create(kind=TokenKind.FEED, user=user, name="feed")
    stale_marker = (TOKEN, token.digest, {"unknown": True})

    if marker_first:
        set_if_newer(*stale_marker, version=0, ttl=30)
    for callback in callbacks:
        callback()
    if not marker_first:
        assert set_if_newer(*stale_marker, version=0, ttl=30) is False

    assert TOKEN.get(token.digest)["kind"] == "feed"
    assert _get(api_client, raw).status_code == 200


def test_auth_failures_past_the_limit_answer_429_without_a_query(api_client, django_assert_num_queries, redis_client):
    raw = issue_token(TokenKind.FEED)
    answers = [_get(api_client, UNKNOWN_RAW).status_code for _ in range(AUTH_FAILURE_LIMIT)]

    refused = _get(api_client, UNKNOWN_RAW)
    with django_assert_num_queries(0):
        another_unknown = _get(api_client, "v" * 43)
    elsewhere = api_client.get("/whoami", HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="10.0.0.9")

    assert answers == [401] * AUTH_FAILURE_LIMIT
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused["Retry-After"]) <= 60
    assert another_unknown.status_code == 429
    assert elsewhere.status_code == 200
