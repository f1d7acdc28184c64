"""factory-boy factories for every accounts model, and `issue_token` for tests of other apps."""

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from accounts.models import (
    ApiToken,
    AuditEntry,
    BrokerCredential,
    InstanceStatus,
    SubscriptionTier,
    TokenKind,
    TradingInstance,
    User,
    UserPermission,
)
from accounts.services import api_key_last4, api_token_create
from accounts.tokens import PREFIX_LENGTH, generate_raw_token, token_digest


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.test")
    subscription_tier = SubscriptionTier.PRO
    password = factory.django.Password("pw")


class OperatorFactory(UserFactory):
    username = factory.Sequence(lambda n: f"operator{n}")
    is_staff = True


class BrokerCredentialFactory(DjangoModelFactory):
    class Meta:
        model = BrokerCredential

    user = factory.SubFactory(UserFactory)
    broker = "coinbase"
    label = factory.Sequence(lambda n: f"account-{n}")
    api_key = factory.Sequence(lambda n: f"key-{n:08d}-ABCD")
    api_secret = factory.Sequence(lambda n: f"secret-{n:08d}-S3CR3T")
    passphrase = None
    api_key_last4 = factory.LazyAttribute(lambda credential: api_key_last4(credential.api_key))


class UserPermissionFactory(DjangoModelFactory):
    class Meta:
        model = UserPermission

    user = factory.SubFactory(UserFactory)
    can_trade = True
    max_position_size = Decimal("100000")
    max_daily_loss = Decimal("10000")
    max_open_positions = 50
    allowed_symbols = factory.LazyFunction(list)


class TradingInstanceFactory(DjangoModelFactory):
    class Meta:
        model = TradingInstance

    user = factory.SubFactory(UserFactory)
    broker_credential = factory.SubFactory(BrokerCredentialFactory, user=factory.SelfAttribute("..user"))
    name = factory.Sequence(lambda n: f"bot-{n}")
    status = InstanceStatus.RUNNING
    starting_balance = Decimal("100000")
    equity = Decimal("100000")
    peak_equity = Decimal("100000")
    day_start_equity = Decimal("100000")


class ApiTokenFactory(DjangoModelFactory):
    """A token row whose raw value is discarded: use `issue_token` when the test needs to authenticate."""

    class Meta:
        model = ApiToken

    kind = TokenKind.BOT
    instance = factory.SubFactory(TradingInstanceFactory)
    user = factory.LazyAttribute(lambda token: token.instance.user if token.instance else UserFactory())
    name = factory.Sequence(lambda n: f"token-{n}")
    digest = factory.LazyFunction(lambda: token_digest(generate_raw_token()))
    prefix = factory.LazyAttribute(lambda token: token.digest[:PREFIX_LENGTH])


class AuditEntryFactory(DjangoModelFactory):
    class Meta:
        model = AuditEntry

    actor = factory.SubFactory(OperatorFactory)
    actor_username = factory.LazyAttribute(lambda entry: entry.actor.username if entry.actor else "")
    action = "test.action"
    target_type = "accounts.user"
    target_id = "1"
    before = None
    after = factory.LazyFunction(dict)
    reason = "test"


def issue_token(kind: str, user: User | None = None, instance: TradingInstance | None = None) -> str:
    """Create a token through the service and return the raw token (for `Authorization: Bearer <raw>`).

    bot: the instance (created when missing) and its user; operator: a staff user; feed: any user."""
    if kind == TokenKind.BOT:
        instance = instance or TradingInstanceFactory(**({"user": user} if user else {}))
        user = instance.user
    elif user is None:
        user = OperatorFactory() if kind == TokenKind.OPERATOR else UserFactory()
    _, raw_token = api_token_create(kind=kind, user=user, instance=instance, name=f"test {kind}")
    return raw_token


def admin_user_form(user: User, **overrides: object) -> dict:
    """The admin user change form as posted for `user` unchanged, with `overrides` (None leaves a field out)."""
    form = {
        "username": user.username,
        "email": user.email,
        "subscription_tier": user.subscription_tier,
        "trading_permission-TOTAL_FORMS": "0",
        "trading_permission-INITIAL_FORMS": "0",
        "trading_permission-MIN_NUM_FORMS": "0",
        "trading_permission-MAX_NUM_FORMS": "1",
        "api_tokens-TOTAL_FORMS": "0",
        "api_tokens-INITIAL_FORMS": "0",
        "api_tokens-MIN_NUM_FORMS": "0",
        "api_tokens-MAX_NUM_FORMS": "0",
        **({"is_active": "on"} if user.is_active else {}),
        **({"is_staff": "on"} if user.is_staff else {}),
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}
