"""Accounts data: users, broker credentials (encrypted), trading permissions, trading instances (the risk
accounts), API tokens (hashed) and the append-only operator audit record.

Models are declarative: no logic in save(), no signals. Writes go through accounts/services.py; the risk
counters on TradingInstance (`exposure`, `position_count`) are moved only by the risk services, by relative SQL
updates (risk.services.exposure), and `is_active` only by risk.services.activation.
"""

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.lookups import Exact

from accounts.crypto import EncryptedTextField
from nija.models import TimeStampedModel
from nija.symbols import is_canonical_symbol

MONEY = {"max_digits": 18, "decimal_places": 8}
ZERO = Decimal("0")
SMALLEST_AMOUNT = Decimal("0.00000001")


def validate_symbol_list(value: object) -> None:
    """A list of canonical symbols (`BTC-USD`: nija.symbols, the one definition), without duplicates."""
    if not isinstance(value, list):
        raise ValidationError("Allowed symbols must be a list.")
    bad = [symbol for symbol in value if not isinstance(symbol, str) or not is_canonical_symbol(symbol)]
    if bad:
        raise ValidationError("Not canonical BASE-USD symbols (like BTC-USD): %(bad)s", params={"bad": bad})
    if len(set(value)) != len(value):
        raise ValidationError("Allowed symbols contain duplicates.")


class SubscriptionTier(models.TextChoices):
    FREE = "free", "Free"
    BASIC = "basic", "Basic"
    PRO = "pro", "Pro"
    ENTERPRISE = "enterprise", "Enterprise"


class User(AbstractUser):
    """A platform user (bot owner or operator). The tier seeds trading limits and API rate limits."""

    email = models.EmailField(unique=True)
    subscription_tier = models.CharField(
        max_length=16, choices=SubscriptionTier.choices, default=SubscriptionTier.FREE, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    REQUIRED_FIELDS = ["email"]

    class Meta(AbstractUser.Meta):
        constraints = [
            models.CheckConstraint(
                condition=models.Q(subscription_tier__in=SubscriptionTier.values),
                name="user_subscription_tier_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.username


class BrokerCredential(TimeStampedModel):
    """API credentials of one broker account, encrypted at rest. Only `api_key_last4` is ever displayed."""

    # Encrypted columns: decrypted on every load, so code that shows only label/last4 defers them.
    SECRET_FIELDS = ("api_key", "api_secret", "passphrase")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="broker_credentials")
    broker = models.CharField(max_length=64)
    label = models.CharField(max_length=100)
    api_key = EncryptedTextField()
    api_secret = EncryptedTextField()
    passphrase = EncryptedTextField(null=True, blank=True)
    api_key_last4 = models.CharField(max_length=4, blank=True, default="")
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "label"], name="brokercredential_label_unique_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.broker}:{self.label} (****{self.api_key_last4})"

    def __repr__(self) -> str:
        return (
            f"<BrokerCredential id={self.pk} broker={self.broker!r} label={self.label!r} key=****{self.api_key_last4}>"
        )


class UserPermission(TimeStampedModel):
    """A user's trading limits (absolute amounts, per instance). One row per user; the tier seeds the defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trading_permission")
    can_trade = models.BooleanField(default=True)
    max_position_size = models.DecimalField(**MONEY, validators=[MinValueValidator(SMALLEST_AMOUNT)])
    max_daily_loss = models.DecimalField(**MONEY, validators=[MinValueValidator(SMALLEST_AMOUNT)])
    max_open_positions = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    # Canonical symbols (BTC-USD, nija.symbols); an empty list allows every symbol.
    allowed_symbols = models.JSONField(default=list, blank=True, validators=[validate_symbol_list])

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_position_size__gt=0), name="userpermission_max_position_size_gt_0"
            ),
            models.CheckConstraint(condition=models.Q(max_daily_loss__gt=0), name="userpermission_max_daily_loss_gt_0"),
            models.CheckConstraint(
                condition=models.Q(max_open_positions__gt=0), name="userpermission_max_open_positions_gt_0"
            ),
            models.CheckConstraint(
                condition=Exact(
                    models.Func(models.F("allowed_symbols"), function="jsonb_typeof", output_field=models.TextField()),
                    models.Value("array"),
                ),
                name="userpermission_allowed_symbols_is_array",
            ),
        ]

    def __str__(self) -> str:
        return f"permissions of user {self.user_id}"


class InstanceStatus(models.TextChoices):
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    ERROR = "error", "Error"


class TradingInstance(TimeStampedModel):
    """A bot on one broker account: the risk account. Deactivated (is_active=False), never deleted, once it has
    history. `exposure`, `position_count` and `equity_counted` are risk state moved only by risk services."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trading_instances")
    broker_credential = models.ForeignKey(
        BrokerCredential, on_delete=models.PROTECT, null=True, blank=True, related_name="trading_instances"
    )
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=InstanceStatus.choices, default=InstanceStatus.STOPPED)
    is_active = models.BooleanField(default=True)
    starting_balance = models.DecimalField(
        **MONEY,
        default=ZERO,
        help_text=(
            "What the account holds before its bot's first report. That first report is measured against it (plus "
            "any transfer recorded before it): a figure more than max_equity_increase_pct above it is held until an "
            "operator confirms it. Left at 0, every first report is held. Unused once a figure was accepted."
        ),
    )
    equity = models.DecimalField(**MONEY, default=ZERO)
    cash_balance = models.DecimalField(**MONEY, null=True, blank=True)
    peak_equity = models.DecimalField(**MONEY, default=ZERO)
    day_start_equity = models.DecimalField(**MONEY, default=ZERO)
    day_start_date = models.DateField(null=True, blank=True)
    last_heartbeat = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "The bot's last authenticated request as PostgreSQL knows it: an equity report sets it, the heartbeat "
            "watchdog copies it from Redis (where every request records it) once it is half a timeout old."
        ),
    )
    heartbeat_lost_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "Set by the heartbeat watchdog when the bot went silent past its heartbeat_timeout (one warning event, "
            "its unfilled reservations released); cleared by its next authenticated request. The latch of one "
            "silence: set, it raises nothing again."
        ),
    )
    equity_reported_at = models.DateTimeField(
        null=True, blank=True, help_text="The bot's last equity report, applied or held: what freshness is measured by."
    )
    equity_accepted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When the current equity figure was accepted (a report within bounds, or a held one confirmed); empty "
            "until the first. The first figure accepted in a UTC day starts the account's day."
        ),
    )
    # Risk counters: Σ notional and count of this instance's pending, approved and open positions.
    exposure = models.DecimalField(**MONEY, default=ZERO)
    position_count = models.IntegerField(default=0)
    equity_counted = models.BooleanField(
        default=False,
        help_text=(
            "Whether this account's equity and start-of-day equity are part of the portfolio's totals (portfolio "
            "equity E and its day start): true while the account and its user are active and its last equity "
            "report is within its own equity_max_age. Set only by the risk services: a report puts the account "
            "back, the freshness sweep and deactivation take it out. Portfolio.equity = the sum of equity over "
            "the accounts with this flag set."
        ),
    )

    class Meta:
        indexes = [models.Index(fields=["status"], name="tradinginstance_status_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(equity__gte=0), name="tradinginstance_equity_gte_0"),
            models.CheckConstraint(condition=models.Q(peak_equity__gte=0), name="tradinginstance_peak_equity_gte_0"),
            models.CheckConstraint(
                condition=models.Q(starting_balance__gte=0), name="tradinginstance_starting_balance_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(day_start_equity__gte=0), name="tradinginstance_day_start_equity_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(cash_balance__isnull=True) | models.Q(cash_balance__gte=0),
                name="tradinginstance_cash_balance_gte_0_or_null",
            ),
            models.CheckConstraint(condition=models.Q(exposure__gte=0), name="tradinginstance_exposure_gte_0"),
            models.CheckConstraint(
                condition=models.Q(position_count__gte=0), name="tradinginstance_position_count_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=InstanceStatus.values), name="tradinginstance_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class TokenKind(models.TextChoices):
    BOT = "bot", "Bot"
    OPERATOR = "operator", "Operator"
    FEED = "feed", "Price feed"


class ApiToken(TimeStampedModel):
    """A bearer token, stored only as the SHA-256 hex digest of the raw token (shown once at creation).

    Bot tokens are bound to one instance (DB-enforced); operator and feed tokens to none."""

    kind = models.CharField(max_length=16, choices=TokenKind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    instance = models.ForeignKey(
        TradingInstance, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=TokenKind.values), name="apitoken_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(kind=TokenKind.BOT, instance__isnull=False)
                | (~models.Q(kind=TokenKind.BOT) & models.Q(instance__isnull=True)),
                name="apitoken_instance_iff_bot",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} token {self.prefix}… ({self.name})"

    def __repr__(self) -> str:
        return f"<ApiToken id={self.pk} kind={self.kind} prefix={self.prefix}>"


class AuditEntry(models.Model):
    """Append-only record of an operator (or system) action: who, what, before, after, why.

    A PostgreSQL trigger (migration 0003) rejects every UPDATE and DELETE of this table."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_entries"
    )
    actor_username = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id"], name="auditentry_target_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_username or 'system'} {self.action}"
