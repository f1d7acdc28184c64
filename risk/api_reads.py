"""The risk app's read endpoints (docs/design.md, API contract): positions, risk events and the risk status summary.

Thin views: validate the query string (a bad value or an unknown parameter is a 400 in the house error shape),
call one selector, render. Operators see everything; a bot sees only its own account: its list is always scoped
to it, naming another account answers 404 `account_not_found` (exactly as an unknown account would, so ids leak
nothing) and another account's position answers 404 `position_not_found`. For an operator, `account_id` is a
filter: an unknown account is an empty list. Reads that cannot reach the database answer 503.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import IsBot, principal_instance_id
from nija.api.pagination import CappedPageNumberPagination
from nija.api.permissions import IsOperator
from nija.errors import InvalidInput
from risk import selectors
from risk.api import FailClosedApiView, PositionOutput, bot_account_id, is_operator, position_json
from risk.errors import PositionNotFound
from risk.models import Severity
from risk.outputs import limits_json, risk_event_json, trading_state_json
from trading.models import PositionStatus

MAX_EVENTS = 1000
DEFAULT_EVENTS = 100
MAX_ID = 2**63 - 1
PAGE_PARAMS = frozenset({"page", "page_size"})


class IsOperatorOrBot(BasePermission):
    message = "Operators or bot tokens only."

    def has_permission(self, request: Request, view: object) -> bool:
        return IsOperator().has_permission(request, view) or IsBot().has_permission(request, view)


def query(serializer_class: type[serializers.Serializer], request: Request, *, also: frozenset = frozenset()) -> dict:
    """The validated query string. Unknown parameters are refused: a misspelt filter must not silently list
    everything. A repeated parameter counts once (its last value)."""
    params = request.query_params
    unknown = sorted(set(params) - set(serializer_class().fields) - also)
    if unknown:
        raise InvalidInput(
            "Unknown query parameter.",
            fields={name: ["Unknown parameter."] for name in unknown},
        )
    serializer = serializer_class(data={name: params.get(name) for name in params if name not in also})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def account_id_field() -> serializers.IntegerField:
    return serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


# ---------------------------------------------------------------------------------------------- positions
class PositionListQuery(serializers.Serializer):
    status = serializers.CharField(required=False, max_length=200)
    account_id = account_id_field()

    def validate_status(self, value: str) -> tuple[str, ...]:
        """One status or several separated by commas (`pending_approval,approved`)."""
        statuses = tuple(part.strip() for part in value.split(","))
        wrong = [status for status in statuses if status not in PositionStatus.values]
        if wrong:
            raise serializers.ValidationError(
                f"Unknown status {wrong[0]!r}; one of: {', '.join(PositionStatus.values)}."
            )
        return statuses


class PositionListApi(FailClosedApiView):
    """GET /api/positions?status=&account_id=: newest first, paginated (operators: all; a bot: its own)."""

    permission_classes = [IsOperatorOrBot]

    @extend_schema(parameters=[PositionListQuery], responses={200: PositionOutput(many=True)})
    def get(self, request: Request) -> Response:
        filters = query(PositionListQuery, request, also=PAGE_PARAMS)
        instance_id = filters.get("account_id")
        own = principal_instance_id(request)
        if own is not None:
            instance_id = bot_account_id(request, instance_id) if instance_id is not None else own
        positions = selectors.position_list(instance_id=instance_id, statuses=filters.get("status", ()))
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(positions, request, view=self)
        operator = is_operator(request)
        return paginator.get_paginated_response([position_json(p, operator=operator) for p in page])


class PositionDetailApi(FailClosedApiView):
    """GET /api/positions/{id}: one position (operators: any; a bot: its own, e.g. to poll a pending approval)."""

    permission_classes = [IsOperatorOrBot]

    @extend_schema(responses={200: PositionOutput})
    def get(self, request: Request, position_id: int) -> Response:
        query(serializers.Serializer, request)
        position = selectors.position_get(position_id=position_id, instance_id=principal_instance_id(request))
        if position is None:
            raise PositionNotFound()
        return Response(position_json(position, operator=is_operator(request)))


# ---------------------------------------------------------------------------------------------- events
class RiskEventQuery(serializers.Serializer):
    severity = serializers.ChoiceField(required=False, choices=Severity.values)
    type = serializers.CharField(required=False, max_length=64)
    account_id = account_id_field()
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_EVENTS, default=DEFAULT_EVENTS)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class RiskEventListApi(FailClosedApiView):
    """GET /api/risk/events?severity=&type=&account_id=&since=&until=&limit= (operators): newest first; since
    inclusive, until exclusive; limit default 100, at most 1,000. The list shape of /api/logs: `count` is the
    number returned; for older events pass `until` = the oldest `created_at` received."""

    permission_classes = [IsOperator]

    @extend_schema(parameters=[RiskEventQuery], responses={200: dict})
    def get(self, request: Request) -> Response:
        filters = query(RiskEventQuery, request)
        events = selectors.risk_event_list(
            severity=filters.get("severity"),
            event_type=filters.get("type"),
            instance_id=filters.get("account_id"),
            since=filters.get("since"),
            until=filters.get("until"),
            limit=filters["limit"],
        )
        results = [risk_event_json(event) for event in events]
        return Response({"count": len(results), "next": None, "previous": None, "results": results})


# ---------------------------------------------------------------------------------------------- status


class RiskStatusApi(FailClosedApiView):
    """GET /api/risk/status (operators): the limits in force (portfolio defaults and each account's overrides),
    the trading states (the portfolio's and every account not ACTIVE), account counts, the portfolio counters and
    the critical risk events of the last 24 hours (newest first, at most 100)."""

    permission_classes = [IsOperator]

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        query(serializers.Serializer, request)
        status = selectors.risk_status(now=timezone.now())
        portfolio = status.portfolio
        body = {
            "limits": {
                "default": limits_json(status.default_limits),
                "overrides": [
                    {"account_id": row.instance_id} | limits_json(row, overrides_only=True) for row in status.overrides
                ],
            },
            "states": {
                "portfolio": trading_state_json(status.portfolio_state),
                "accounts": [trading_state_json(state) for state in status.account_states],
            },
            "accounts": {"total": status.account_count, "active": status.active_account_count},
            "portfolio": {
                "equity": portfolio.equity,
                "day_start_equity": portfolio.day_start_equity,
                "daily_pnl": portfolio.equity - portfolio.day_start_equity,
                "exposure": portfolio.exposure,
                "position_count": portfolio.position_count,
                "counters_verified_at": portfolio.counters_verified_at,
            },
            "critical_events": [risk_event_json(event) for event in status.critical_events],
        }
        return Response(body)
