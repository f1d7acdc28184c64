"""The risk API (docs/design.md, API contract): thin views that parse, authorize, call one service and render.

Bots only ever reach their own account (another account's id answers 404, as an unknown one does); operators
act through roles (approve/reject, halt/resume). Every view fails closed: if the database or Redis cannot be
read, or a lock wait passes its timeout, the answer is 503 `risk_state_unavailable` and nothing is approved.
"""

import json
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, DataError
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from redis import RedisError
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import TradingInstance
from accounts.permissions import IsBot, principal_instance_id, request_principal
from accounts.selectors import user_permission_key
from accounts.tokens import ApiPrincipal
from nija.api.permissions import IsOperator
from nija.cache import prefetched_of, prefetched_reads
from nija.errors import DomainError, InvalidInput
from nija.metrics import risk_check_observe
from risk import selectors
from risk.api_fields import (
    EIGHT_PLACES,
    MAX_AMOUNT,
    choice_field,
    flag_field,
    id_field,
    money,
    safe_id_field,
    symbol_field,
    text_field,
)
from risk.api_fields import AmountField as AmountField  # re-exported: other apps' serializers use it
from risk.errors import AccountNotFound, RiskStateUnavailable
from risk.outputs import account_equity_json, trade_json, trading_state_json
from risk.reasons import breach_message_for, reasons_for
from risk.services.approval import position_approve, position_reject
from risk.services.check import CheckInput, CheckOutcome, position_check
from risk.services.equity import equity_hold_confirm, equity_report, equity_transfer_record
from risk.services.lifecycle import CloseInput, FillInput, position_cancel, position_close, position_fill
from risk.services.trading_state import trading_halt, trading_resume
from trading.market import market_price_key


# ---------------------------------------------------------------------------------------------- helpers
class FailClosedApiView(APIView):
    """Every risk view: "cannot read the risk state" (database or Redis unreachable, a lock or statement timeout)
    becomes a 503 that approves nothing, whether it happens while DRF authenticates (an uncached token needs
    PostgreSQL) or inside the view (the transaction has rolled back)."""

    def handle_exception(self, exc: Exception) -> Response:
        if is_out_of_range(exc):
            exc = AmountOutOfRange()
        elif isinstance(exc, DatabaseError | RedisError):
            exc = RiskStateUnavailable(f"Risk state is unavailable ({type(exc).__name__}); nothing was approved.")
        return super().handle_exception(exc)


NUMERIC_VALUE_OUT_OF_RANGE = "22003"  # PostgreSQL's SQLSTATE


def is_out_of_range(exc: Exception) -> bool:
    """A well-formed request whose result does not fit NUMERIC(18,8) (a fill's notional, a close's P&L, a
    counter): the request's fault, not an outage; the transaction has rolled back, nothing was written."""
    return isinstance(exc, DataError) and getattr(exc.__cause__, "pgcode", None) == NUMERIC_VALUE_OUT_OF_RANGE


class AmountOutOfRange(DomainError):
    default_code = "amount_out_of_range"
    default_detail = "The request's amounts lead to a value beyond 9999999999.99999999; nothing was written."


class StrictSerializer(serializers.Serializer):
    """Refuses a body that is not a JSON object or that names fields it does not know (a bot can never slip in a
    server-owned value such as exposure, status or limits)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def bot_account_id(request: Request, account_id: int) -> int:
    """A bot may only name its own account; any other id answers exactly like an unknown one."""
    if principal_instance_id(request) != account_id:
        raise AccountNotFound()
    return account_id


def correlation_id(request: Request) -> str:
    return str(getattr(request, "request_id", "") or request.META.get("HTTP_X_REQUEST_ID", ""))[:64]


class HasRiskPermission(BasePermission):
    """An operator (session or operator token) holding a given permission through a role (group)."""

    permission = ""

    def has_permission(self, request: Request, view: object) -> bool:
        return IsOperator().has_permission(request, view) and request.user.has_perm(self.permission)


class CanApprove(HasRiskPermission):
    permission = "risk.approve_position"
    message = "Approving or rejecting positions needs the approver role."


class CanHalt(HasRiskPermission):
    permission = "risk.halt_trading"
    message = "Halting or resuming trading needs the risk admin role."


# ---------------------------------------------------------------------------------------------- check
class CheckPositionInput(StrictSerializer):
    """The check body. Every field is parsed by one function of `risk.api_fields`, which `fast_check_input` calls
    too: the two paths accept exactly the same bodies and produce the same CheckInput."""

    account_id = id_field()
    symbol = symbol_field()
    side = choice_field(("long", "short"))
    quantity = money()
    price = money()
    reduce_only = flag_field()
    position_id = id_field(required=False)
    dry_run = flag_field()
    client_order_id = safe_id_field(required=False)

    def validate(self, attrs: dict) -> dict:
        return check_rules(attrs)


def check_rules(attrs: dict) -> dict:
    """The rules across fields of a check body (after every field parsed), shared by both paths."""
    if attrs["reduce_only"] and "position_id" not in attrs:
        raise serializers.ValidationError({"position_id": ["A reduce-only check names the position it reduces."]})
    if attrs["quantity"] * attrs["price"] > MAX_AMOUNT:
        raise serializers.ValidationError({"quantity": ["quantity x price is beyond the largest notional."]})
    return attrs


# The check body parsed without DRF's machinery: the serializer costs about 0.27 ms a request on the hottest
# endpoint, this a few microseconds. It runs the serializer's own field parsers, so it accepts exactly what the
# serializer accepts; whatever it refuses (or cannot word: a missing, null or unknown field) returns None and goes
# through `CheckPositionInput`, which refuses it with DRF's error body. A property test holds both to that.
_CHECK_PARSERS = {name: field.parse for name, field in CheckPositionInput._declared_fields.items()}
_CHECK_REQUIRED = frozenset(name for name, field in CheckPositionInput._declared_fields.items() if field.required)
_CHECK_DEFAULTS = {"reduce_only": False, "dry_run": False}


def fast_check_input(data: Any) -> CheckInput | None:
    """`data` as a CheckInput if it is a valid check body, else None (the serializer words the error)."""
    if type(data) is not dict or not _CHECK_REQUIRED <= data.keys() <= _CHECK_PARSERS.keys():
        return None
    try:
        parsed = {name: _CHECK_PARSERS[name](value) for name, value in data.items()}
        return CheckInput(**check_rules(_CHECK_DEFAULTS | parsed))
    except serializers.ValidationError:
        return None


class LegacyCheckInput(StrictSerializer):
    """The earlier API's body: a dry run of that notional (symbol rules skipped)."""

    account_id = id_field()
    position_size = money()


class ReasonOutput(serializers.Serializer):
    """A failing rule as its viewer may see it: a bot gets no figure of a portfolio rule (limit and value null)."""

    code = serializers.CharField()
    message = serializers.CharField()
    limit = serializers.JSONField(help_text="The limit broken: an amount (string), a count (integer) or null.")
    value = serializers.JSONField(help_text="The value that broke it: an amount, a count, a state, a symbol or null.")


class CheckMetricsOutput(serializers.Serializer):
    account_equity = serializers.DecimalField(max_digits=18, decimal_places=8)
    account_exposure = serializers.DecimalField(max_digits=18, decimal_places=8)
    account_exposure_pct = serializers.DecimalField(max_digits=18, decimal_places=8, allow_null=True)


class CheckOutput(serializers.Serializer):
    """The answer to a check (schema only: `outcome_json` writes it). A replay adds `replayed: true`; the legacy
    body adds `reason`, the first reason's message."""

    decision = serializers.ChoiceField(choices=["approved", "pending_approval", "rejected"])
    allowed = serializers.BooleanField(help_text="The order may be placed now (for a replay: the approval holds now).")
    status = serializers.CharField(allow_null=True, help_text="The recorded position's status now; null if none.")
    reasons = ReasonOutput(many=True)
    position_id = serializers.IntegerField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    notional = serializers.DecimalField(max_digits=18, decimal_places=8)
    metrics = CheckMetricsOutput(help_text="The bot's own account after this decision; empty for a replay.")
    replayed = serializers.BooleanField(required=False)
    reason = serializers.CharField(required=False, allow_null=True)


def outcome_json(outcome: CheckOutcome, *, legacy: bool = False) -> dict:
    """A check answer, for the bot that asked: portfolio rules without their figures (`risk.reasons`)."""
    reasons = reasons_for(outcome.reasons, operator=False)
    body = {
        "decision": outcome.decision,
        "allowed": outcome.allowed,
        "status": outcome.status,
        "reasons": reasons,
        "position_id": outcome.position_id,
        "expires_at": outcome.expires_at,
        "notional": outcome.notional.quantize(EIGHT_PLACES),
        "metrics": outcome.metrics,
    }
    if outcome.replayed:
        body["replayed"] = True
    if legacy:
        body["reason"] = reasons[0]["message"] if reasons else None
    return body


# A check body is about 150 bytes. Only a body up to this size is read before the token's round trip, and only
# then does that round trip read the check's cache entries: read before the whole body had arrived, they could be
# older than an edit committed while a slow body was still on its way.
PREFETCH_BODY_MAX = 2048


def _short_body(request: Request) -> object:
    """The parsed JSON of a body of at most PREFETCH_BODY_MAX bytes, read now; None when there is none, it is
    longer or it does not parse (the view parses and words every error itself)."""
    try:
        if not 0 < int(request.META.get("CONTENT_LENGTH") or 0) <= PREFETCH_BODY_MAX:
            return None
        return json.loads(request.body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser goes
        return None


class PositionCheckApi(FailClosedApiView):
    """POST /api/risk/check-position: the pre-trade check (bots, their own account)."""

    permission_classes = [IsBot]
    throttle_scope = "risk_check"

    def gate_prefetch(self, principal: ApiPrincipal) -> list[str]:
        """The check's two cache reads, the bot's limits and the mark it prices at, read in the token's round trip
        (accounts.token_gate) rather than in two more; only once the whole body is in (a short one: read here)."""
        body = _short_body(self.request)
        if not isinstance(body, dict):
            return []
        keys = [user_permission_key(user_id=principal.user_id)]
        symbol = body.get("symbol")
        mark = market_price_key(symbol) if isinstance(symbol, str) else None
        return [*keys, mark] if mark else keys

    @extend_schema(request=CheckPositionInput, responses={200: CheckOutput})
    def post(self, request: Request) -> Response:
        data = request.data
        legacy = isinstance(data, dict) and "position_size" in data and "symbol" not in data
        if legacy:
            fields = validated(LegacyCheckInput, data)
            check = CheckInput(
                account_id=fields["account_id"], legacy_position_size=fields["position_size"], dry_run=True
            )
        else:
            check = fast_check_input(data) or CheckInput(**validated(CheckPositionInput, data))
        bot_account_id(request, check.account_id)
        principal = request_principal(request)
        with prefetched_reads(prefetched_of(request)):
            outcome = position_check(request=check, user_id=principal.user_id, correlation_id=correlation_id(request))
        risk_check_observe(outcome.decision, (reason["code"] for reason in outcome.reasons))
        return Response(outcome_json(outcome, legacy=legacy))


# ---------------------------------------------------------------------------------------------- positions
class PositionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    account_id = serializers.IntegerField(source="instance_id")
    symbol = serializers.CharField()
    side = serializers.CharField()
    status = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=18, decimal_places=8)
    filled_quantity = serializers.DecimalField(max_digits=18, decimal_places=8)
    closed_quantity = serializers.DecimalField(max_digits=18, decimal_places=8)
    requested_price = serializers.DecimalField(max_digits=18, decimal_places=8)
    entry_price = serializers.DecimalField(
        max_digits=18, decimal_places=8, allow_null=True, help_text="The open cost over the open quantity."
    )
    exit_price = serializers.DecimalField(max_digits=18, decimal_places=8, allow_null=True)
    open_cost = serializers.DecimalField(max_digits=18, decimal_places=8, help_text="The exact cost of what is open.")
    notional = serializers.DecimalField(max_digits=18, decimal_places=8)
    realized_pnl = serializers.DecimalField(max_digits=18, decimal_places=8)
    fees = serializers.DecimalField(max_digits=18, decimal_places=8)
    reasons = ReasonOutput(many=True)
    client_order_id = serializers.CharField(allow_null=True)
    reservation_expires_at = serializers.DateTimeField(allow_null=True)
    unfilled_released_at = serializers.DateTimeField(
        allow_null=True,
        help_text=(
            "When the unfilled rest of the order was released (a halt, a deactivation, the heartbeat watchdog or "
            "reservation_ttl): from then on nothing is reserved, whatever reservation_expires_at says, and a fill "
            "of the rest is recorded without a check (a warning event)."
        ),
    )
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def position_json(position: Any, *, operator: bool) -> dict:
    """A position for its viewer: an operator sees every figure of its reasons, a bot no portfolio-wide one."""
    body = PositionOutput(position).data
    body["reasons"] = reasons_for(position.reasons, operator=operator)
    return body


def is_operator(request: Request) -> bool:
    """Whether the caller may see portfolio-wide figures (anyone else is treated as a bot)."""
    return IsOperator().has_permission(request, None)


class FillInputSerializer(StrictSerializer):
    exchange_order_id = safe_id_field()
    quantity = money()
    price = money()
    fees = money(required=False, signed=True)

    def validate(self, attrs: dict) -> dict:
        if attrs["quantity"] * attrs["price"] > MAX_AMOUNT:
            raise serializers.ValidationError({"quantity": ["quantity x price is beyond the largest notional."]})
        return attrs


class CloseInputSerializer(StrictSerializer):
    client_close_id = safe_id_field()
    exit_price = money()
    fees = money(required=False, signed=True)
    quantity = money(required=False)


class PositionFillApi(FailClosedApiView):
    """POST /api/positions/{id}/fill: a bot reports an exchange fill of its reserved position."""

    permission_classes = [IsBot]
    allows_inactive_account = True  # it happened at the exchange: recorded even after a deactivation

    @extend_schema(request=FillInputSerializer, responses={200: PositionOutput})
    def post(self, request: Request, position_id: int) -> Response:
        fill = FillInput(**validated(FillInputSerializer, request.data))
        position = position_fill(position_id=position_id, instance_id=principal_instance_id(request), fill=fill)
        return Response(position_json(position, operator=False))


class PositionCloseApi(FailClosedApiView):
    """POST /api/positions/{id}/close: a bot reports a whole or partial close (accepted in every state)."""

    permission_classes = [IsBot]
    allows_inactive_account = True  # it happened at the exchange: recorded even after a deactivation

    @extend_schema(request=CloseInputSerializer, responses={200: dict})
    def post(self, request: Request, position_id: int) -> Response:
        close = CloseInput(**validated(CloseInputSerializer, request.data))
        trade = position_close(position_id=position_id, instance_id=principal_instance_id(request), close=close)
        return Response({"trade": trade_json(trade), "position": position_json(trade.position, operator=False)})


class PositionCancelApi(FailClosedApiView):
    """POST /api/positions/{id}/cancel: release the unfilled reservation (the bot's own, or any for operators)."""

    def get_permissions(self) -> list[BasePermission]:
        return [IsBot()] if request_principal(self.request) and principal_instance_id(self.request) else [CanApprove()]

    @extend_schema(request=None, responses={200: PositionOutput})
    def post(self, request: Request, position_id: int) -> Response:
        if request.data:
            raise InvalidInput("Cancel takes no body.", fields={"body": ["Must be empty."]})
        position = position_cancel(position_id=position_id, instance_id=principal_instance_id(request))
        return Response(position_json(position, operator=is_operator(request)))


class DecisionInput(StrictSerializer):
    reason = text_field(max_length=1000, required=False, default="", allow_blank=True)


class RejectInput(StrictSerializer):
    """A rejection says why (the bot and the audit trail read it): a missing or blank reason is a 400."""

    reason = text_field(max_length=1000)


class PositionApproveApi(FailClosedApiView):
    """POST /api/positions/{id}/approve (approver role): re-runs every rule now; may still reject."""

    permission_classes = [CanApprove]

    @extend_schema(request=DecisionInput, responses={200: PositionOutput})
    def post(self, request: Request, position_id: int) -> Response:
        reason = validated(DecisionInput, request.data)["reason"]
        position = position_approve(position_id=position_id, actor=request.user, reason=reason)
        return Response(position_json(position, operator=True))


class PositionRejectApi(FailClosedApiView):
    """POST /api/positions/{id}/reject (approver role), with the reason for it."""

    permission_classes = [CanApprove]

    @extend_schema(request=RejectInput, responses={200: PositionOutput})
    def post(self, request: Request, position_id: int) -> Response:
        reason = validated(RejectInput, request.data)["reason"]
        position = position_reject(position_id=position_id, actor=request.user, reason=reason)
        return Response(position_json(position, operator=True))


# ---------------------------------------------------------------------------------------------- state
class HaltInput(StrictSerializer):
    account_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, allow_null=True)
    mode = serializers.ChoiceField(choices=["halted", "reducing"], required=False, default="halted")
    reason = text_field(max_length=1000)


class ResumeInput(StrictSerializer):
    account_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, allow_null=True)
    reason = text_field(max_length=1000)


class TradingHaltApi(FailClosedApiView):
    """POST /api/risk/halt (risk admin): the kill switch for the portfolio or one account."""

    permission_classes = [CanHalt]

    @extend_schema(request=HaltInput, responses={200: dict})
    def post(self, request: Request) -> Response:
        data = validated(HaltInput, request.data)
        change = trading_halt(
            instance_id=data.get("account_id"),
            mode=data["mode"],
            reason=data["reason"],
            actor=request.user,
            now=timezone.now(),
            correlation_id=correlation_id(request),
        )
        body = trading_state_json(change.state) | {
            "previous": change.previous,
            "cancelled_position_ids": list(change.cancelled_position_ids),
        }
        return Response(body)


class TradingResumeApi(FailClosedApiView):
    """POST /api/risk/resume (risk admin)."""

    permission_classes = [CanHalt]

    @extend_schema(request=ResumeInput, responses={200: dict})
    def post(self, request: Request) -> Response:
        data = validated(ResumeInput, request.data)
        change = trading_resume(
            instance_id=data.get("account_id"), reason=data["reason"], actor=request.user, now=timezone.now()
        )
        return Response(trading_state_json(change.state) | {"previous": change.previous})


# ---------------------------------------------------------------------------------------------- equity
class EquityReportInput(StrictSerializer):
    equity = money(allow_zero=True)
    cash_balance = money(required=False, allow_zero=True)


EQUITY_HELD_MESSAGE = (
    "The reported equity rises more than max_equity_increase_pct above the last accepted figure, or above the "
    "account's start of the day: it is held, not applied, until an operator confirms it (a deposit is recorded by "
    "an operator as a transfer). The report counts as a heartbeat."
)


class EquityReportOutput(serializers.Serializer):
    account_id = serializers.IntegerField()
    equity = serializers.DecimalField(max_digits=18, decimal_places=8)
    peak_equity = serializers.DecimalField(max_digits=18, decimal_places=8)
    day_start_equity = serializers.DecimalField(max_digits=18, decimal_places=8)
    equity_reported_at = serializers.DateTimeField(allow_null=True)
    state = serializers.DictField(child=serializers.CharField())
    emergency = serializers.ListField(child=serializers.CharField())
    code = serializers.CharField(required=False, help_text="202 only: equity_increase_held")
    message = serializers.CharField(required=False)
    held_equity = serializers.DecimalField(max_digits=18, decimal_places=8, required=False)


class AccountMetricsReportApi(FailClosedApiView):
    """POST /api/accounts/{id}/metrics: a bot reports its equity (a heartbeat); may trip an emergency halt. An
    increase beyond max_equity_increase_pct is held, not applied: 202 `equity_increase_held`."""

    permission_classes = [IsBot]

    @extend_schema(request=EquityReportInput, responses={200: EquityReportOutput, 202: EquityReportOutput})
    def post(self, request: Request, account_id: int) -> Response:
        data = validated(EquityReportInput, request.data)
        bot_account_id(request, account_id)
        outcome = equity_report(
            instance_id=account_id,
            equity=data["equity"],
            cash_balance=data.get("cash_balance"),
            correlation_id=correlation_id(request),
        )
        account = outcome.account
        portfolio_mode, account_mode = selectors.trading_modes(instance_id=account.pk)
        body = account_equity_json(account) | {
            "state": {"portfolio": portfolio_mode, "account": account_mode},
            "emergency": [breach_message_for(breach, operator=False) for breach in outcome.new_breaches],
        }
        if outcome.hold is None:
            return Response(body)
        held = {"code": "equity_increase_held", "message": EQUITY_HELD_MESSAGE, "held_equity": outcome.hold.equity}
        return Response(body | held, status=status.HTTP_202_ACCEPTED)


# ---------------------------------------------------------------------------------------------- operators: equity
# Held equity increases and deposits/withdrawals: risk admins only (the manage_equity permission).
class CanManageEquity(HasRiskPermission):
    permission = "risk.manage_equity"
    message = "Confirming held equity or recording transfers needs the risk admin role."


class EquityConfirmInput(StrictSerializer):
    """`equity`: the held figure the operator was shown and confirms; if a later report replaced it, nothing is
    applied (409)."""

    reason = text_field(max_length=1000)
    equity = money(allow_zero=True)


class EquityHoldOutput(serializers.Serializer):
    id = serializers.IntegerField()
    account_id = serializers.IntegerField(source="instance_id")
    status = serializers.CharField()
    equity = serializers.DecimalField(max_digits=18, decimal_places=8)
    accepted_equity = serializers.DecimalField(max_digits=18, decimal_places=8)
    reports = serializers.IntegerField()
    first_reported_at = serializers.DateTimeField()
    reported_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolution_reason = serializers.CharField()


class EquityConfirmOutput(serializers.Serializer):
    hold = EquityHoldOutput()
    account = serializers.DictField()


class EquityHoldConfirmApi(FailClosedApiView):
    """POST /api/accounts/{id}/equity/confirm (risk admin): apply the account's held equity increase (audited)."""

    permission_classes = [CanManageEquity]

    @extend_schema(request=EquityConfirmInput, responses={200: EquityConfirmOutput})
    def post(self, request: Request, account_id: int) -> Response:
        data = validated(EquityConfirmInput, request.data)
        hold = equity_hold_confirm(
            instance_id=account_id, actor=request.user, reason=data["reason"], expected_equity=data["equity"]
        )
        account = TradingInstance.objects.get(pk=account_id)
        return Response({"hold": EquityHoldOutput(hold).data, "account": account_equity_json(account)})


class TransferInput(StrictSerializer):
    """`amount` is signed (a deposit positive, a withdrawal negative); `reference` is the operator's (the exchange's
    transfer id, say), unique per account."""

    amount = money(signed=True)
    reference = safe_id_field()
    reason = text_field(max_length=1000)

    def validate_amount(self, value: Decimal) -> Decimal:
        if value == 0:
            raise serializers.ValidationError("A transfer moves money: the amount cannot be 0.")
        return value


class TransferOutput(serializers.Serializer):
    id = serializers.IntegerField()
    account_id = serializers.IntegerField(source="instance_id")
    amount = serializers.DecimalField(max_digits=18, decimal_places=8)
    reference = serializers.CharField()
    reason = serializers.CharField()
    equity_before = serializers.DecimalField(max_digits=18, decimal_places=8)
    equity_after = serializers.DecimalField(max_digits=18, decimal_places=8)
    recorded_at = serializers.DateTimeField()


class TransferRecordedOutput(serializers.Serializer):
    transfer = TransferOutput()
    account = serializers.DictField()
    replayed = serializers.BooleanField()


class EquityTransferApi(FailClosedApiView):
    """POST /api/accounts/{id}/transfers (risk admin): record a deposit or withdrawal (audited, never held). 201;
    the same reference and amount again answers 200 with the recorded transfer, another amount 409."""

    permission_classes = [CanManageEquity]

    @extend_schema(request=TransferInput, responses={201: TransferRecordedOutput, 200: TransferRecordedOutput})
    def post(self, request: Request, account_id: int) -> Response:
        data = validated(TransferInput, request.data)
        outcome = equity_transfer_record(
            instance_id=account_id,
            amount=data["amount"],
            reference=data["reference"],
            reason=data["reason"],
            actor=request.user,
        )
        body = {
            "transfer": TransferOutput(outcome.transfer).data,
            "account": account_equity_json(outcome.account),
            "replayed": not outcome.created,
        }
        return Response(body, status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK)
