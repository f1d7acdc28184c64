"""The alerts API: rules (operators read, risk admins write), notification channels (risk admins only; secrets
write-only) with a "send test", and the alert events.

Thin views: parse strictly (an unknown field or query parameter, a wrong type, NaN, a negative duration or a
threshold outside its figure's range is a 400 in the house error shape and writes nothing), authorize, call one
service or selector, render. Writes need the role's model permission (granted to risk_admin by the monitoring
migrations); bots and price feeds are refused (403), anonymous callers 401.
"""

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.alerts import engine, selectors
from monitoring.alerts.errors import ChannelNotFound, RuleNotFound
from monitoring.alerts.models import MAX_DURATION_SECONDS, AlertEvent, AlertRule, ChannelKind, NotificationChannel
from monitoring.alerts.services.channels import (
    MAX_URL_LENGTH,
    ChannelWrite,
    alert_channel_create,
    alert_channel_delete,
    alert_channel_test,
    alert_channel_update,
)
from monitoring.alerts.services.rules import alert_rule_create, alert_rule_delete, alert_rule_update
from nija.api.pagination import CappedPageNumberPagination
from nija.api.permissions import IsOperator
from risk.api import AmountField, StrictSerializer, validated
from risk.api_reads import PAGE_PARAMS, query
from risk.models import Severity

MAX_ID = 2**63 - 1
MAX_STATES_SHOWN = 100
API_REASON = "through the API"


class AlertPermission(BasePermission):
    """Operators (staff, by session or operator token); a method listed in the view's `required_permissions`
    also needs that model permission."""

    message = "Operators only; changing alerts needs the risk admin role."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not IsOperator().has_permission(request, view):
            return False
        method = "GET" if request.method == "HEAD" else request.method  # Django answers HEAD with the GET handler
        needed = getattr(view, "required_permissions", {}).get(method)
        return needed is None or request.user.has_perm(needed)


def _paginated(request: Request, view: APIView, rows: Any, render: Any) -> Response:
    paginator: BasePagination = CappedPageNumberPagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response([render(row) for row in page])


def _reason(request: Request) -> str:
    return f"{API_REASON} ({request.method} {request.path})"


# ---------------------------------------------------------------------------------------------- rules
class RuleInput(StrictSerializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    scope = serializers.ChoiceField(choices=[scope.value for scope in engine.Scope])
    account_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True)
    figure = serializers.ChoiceField(choices=[figure.value for figure in engine.Figure])
    comparator = serializers.ChoiceField(choices=[comparator.value for comparator in engine.Comparator])
    threshold = AmountField(max_digits=28, decimal_places=8)
    for_seconds = serializers.IntegerField(min_value=0, max_value=MAX_DURATION_SECONDS, required=False)
    cooldown_seconds = serializers.IntegerField(min_value=0, max_value=MAX_DURATION_SECONDS, required=False)
    severity = serializers.ChoiceField(choices=Severity.values, required=False)
    enabled = serializers.BooleanField(required=False)
    channel_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), max_length=50, required=False
    )


class RuleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    scope = serializers.CharField()
    account_id = serializers.IntegerField(source="instance_id", allow_null=True)
    figure = serializers.CharField()
    comparator = serializers.CharField()
    threshold = serializers.DecimalField(max_digits=28, decimal_places=8)
    for_seconds = serializers.IntegerField()
    cooldown_seconds = serializers.IntegerField()
    severity = serializers.CharField()
    enabled = serializers.BooleanField()
    channel_ids = serializers.SerializerMethodField()
    pending_count = serializers.IntegerField()
    firing_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_channel_ids(self, rule: AlertRule) -> list[int]:
        return sorted(channel.pk for channel in rule.channels.all())


class StateOutput(serializers.Serializer):
    account_id = serializers.IntegerField(source="instance_id", allow_null=True)
    status = serializers.CharField()
    value = serializers.DecimalField(max_digits=28, decimal_places=8, allow_null=True)
    breach_since = serializers.DateTimeField(allow_null=True)
    fired_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)


class RuleDetailOutput(RuleOutput):
    states = serializers.SerializerMethodField()

    def get_states(self, rule: AlertRule) -> list[dict]:
        return StateOutput(selectors.alert_states_of(rule_id=rule.pk, limit=MAX_STATES_SHOWN), many=True).data


class RuleListQuery(serializers.Serializer):
    enabled = serializers.BooleanField(required=False, allow_null=True, default=None)
    figure = serializers.ChoiceField(choices=[figure.value for figure in engine.Figure], required=False)
    scope = serializers.ChoiceField(choices=[scope.value for scope in engine.Scope], required=False)


RULE_EXAMPLE = OpenApiExample(
    "Account drawdown",
    value={
        "name": "Drawdown past 10 %",
        "scope": "every_account",
        "figure": "drawdown_pct",
        "comparator": "gte",
        "threshold": "0.10",
        "for_seconds": 60,
        "cooldown_seconds": 900,
        "severity": "warning",
        "channel_ids": [1],
    },
    request_only=True,
)
KILL_SWITCH_EXAMPLE = OpenApiExample(
    "Kill switch fired",
    value={
        "name": "Portfolio halted or reducing",
        "scope": "portfolio",
        "figure": "trading_state",
        "comparator": "gte",
        "threshold": "1",
        "severity": "critical",
        "channel_ids": [1, 2],
    },
    request_only=True,
)
INVALID_EXAMPLE = OpenApiExample(
    "Threshold out of range",
    value={
        "error": {
            "code": "invalid_alert_rule",
            "message": "The alert rule is not valid; nothing was written.",
            "fields": {"threshold": ["For drawdown_pct: from 0 to 1."]},
        }
    },
    response_only=True,
    status_codes=["400"],
)


def rule_json(rule: AlertRule, *, detail: bool = False) -> dict:
    return (RuleDetailOutput if detail else RuleOutput)(rule).data


class AlertRuleListApi(APIView):
    """GET /api/alerts/rules (operators; `?enabled=&figure=&scope=`) and POST (risk admins)."""

    permission_classes = [AlertPermission]
    required_permissions = {"POST": "monitoring.add_alertrule"}

    @extend_schema(parameters=[RuleListQuery], responses={200: RuleOutput(many=True)})
    def get(self, request: Request) -> Response:
        filters = query(RuleListQuery, request, also=PAGE_PARAMS)
        rules = selectors.alert_rule_list(
            enabled=filters.get("enabled"), figure=filters.get("figure"), scope=filters.get("scope")
        )
        return _paginated(request, self, rules, rule_json)

    @extend_schema(
        request=RuleInput,
        responses={201: RuleDetailOutput, 400: OpenApiResponse(description="Invalid rule")},
        examples=[RULE_EXAMPLE, KILL_SWITCH_EXAMPLE, INVALID_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        fields = validated(RuleInput, request.data)
        rule = alert_rule_create(actor=request.user, reason=_reason(request), **fields)
        return Response(rule_json(selectors.alert_rule_get(rule_id=rule.pk), detail=True), status=201)


class AlertRuleDetailApi(APIView):
    """GET /api/alerts/rules/{id} (operators, with its pending and firing pairs), PATCH and DELETE (risk admins)."""

    permission_classes = [AlertPermission]
    required_permissions = {"PATCH": "monitoring.change_alertrule", "DELETE": "monitoring.delete_alertrule"}

    def _rule(self, rule_id: int) -> AlertRule:
        rule = selectors.alert_rule_get(rule_id=rule_id)
        if rule is None:
            raise RuleNotFound()
        return rule

    @extend_schema(responses={200: RuleDetailOutput})
    def get(self, request: Request, rule_id: int) -> Response:
        query(serializers.Serializer, request)
        return Response(rule_json(self._rule(rule_id), detail=True))

    @extend_schema(
        request=RuleInput(partial=True),
        responses={200: RuleDetailOutput},
        examples=[OpenApiExample("Raise the threshold", value={"threshold": "0.15"}, request_only=True)],
    )
    def patch(self, request: Request, rule_id: int) -> Response:
        serializer = RuleInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        alert_rule_update(rule_id=rule_id, actor=request.user, reason=_reason(request), **serializer.validated_data)
        return Response(rule_json(self._rule(rule_id), detail=True))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, rule_id: int) -> Response:
        alert_rule_delete(rule_id=rule_id, actor=request.user, reason=_reason(request))
        return Response(status=204)


# ---------------------------------------------------------------------------------------------- channels
class ChannelInput(StrictSerializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=ChannelKind.values)
    url = serializers.CharField(max_length=MAX_URL_LENGTH, trim_whitespace=True)
    secret = serializers.CharField(max_length=200, required=False, write_only=True)
    enabled = serializers.BooleanField(required=False)


class ChannelUpdateInput(StrictSerializer):
    name = serializers.CharField(max_length=100, required=False)
    url = serializers.CharField(max_length=MAX_URL_LENGTH, required=False, trim_whitespace=True)
    secret = serializers.CharField(max_length=200, required=False, write_only=True)
    rotate_secret = serializers.BooleanField(required=False)
    enabled = serializers.BooleanField(required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("rotate_secret") and "secret" in attrs:
            raise serializers.ValidationError({"secret": ["Give a secret or ask for a rotation, not both."]})
        return attrs


class ChannelOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    target = serializers.SerializerMethodField(help_text="The webhook URL, or an Apprise URL's scheme and service.")
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_target(self, channel: NotificationChannel) -> str:
        return channel.webhook_url if channel.kind == ChannelKind.WEBHOOK else channel.target_hint


class ChannelWriteOutput(ChannelOutput):
    secret = serializers.CharField(
        required=False, help_text="Only when the server generated the signing secret: shown this once, never again."
    )


def channel_json(write: ChannelWrite | NotificationChannel) -> dict:
    if isinstance(write, NotificationChannel):
        return ChannelOutput(write).data
    body = dict(ChannelOutput(write.channel).data)
    if write.revealed_secret is not None:
        body["secret"] = write.revealed_secret
    return body


CHANNEL_EXAMPLES = [
    OpenApiExample(
        "Signed webhook (secret generated)",
        value={"name": "desk-webhook", "kind": "webhook", "url": "https://alerts.example.com/nija"},
        request_only=True,
    ),
    OpenApiExample(
        "Telegram through Apprise",
        value={"name": "desk-telegram", "kind": "apprise", "url": "tgram://123456789:AAH-bot-token/-100123456"},
        request_only=True,
    ),
    OpenApiExample(
        "Created webhook",
        value={
            "id": 1,
            "name": "desk-webhook",
            "kind": "webhook",
            "target": "https://alerts.example.com/nija",
            "enabled": True,
            "created_at": "2026-01-05T10:00:00Z",
            "updated_at": "2026-01-05T10:00:00Z",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
        response_only=True,
        status_codes=["201"],
    ),
]


class AlertChannelListApi(APIView):
    """GET and POST /api/alerts/channels (risk admins). A webhook's signing secret is shown once, in the answer
    to the POST that generated it; an Apprise URL is never shown back (its scheme and service are)."""

    permission_classes = [AlertPermission]
    required_permissions = {
        "GET": "monitoring.view_notificationchannel",
        "POST": "monitoring.add_notificationchannel",
    }

    @extend_schema(responses={200: ChannelOutput(many=True)})
    def get(self, request: Request) -> Response:
        query(serializers.Serializer, request, also=PAGE_PARAMS)
        return _paginated(request, self, selectors.channel_list(), channel_json)

    @extend_schema(request=ChannelInput, responses={201: ChannelWriteOutput}, examples=CHANNEL_EXAMPLES)
    def post(self, request: Request) -> Response:
        fields = validated(ChannelInput, request.data)
        write = alert_channel_create(actor=request.user, reason=_reason(request), **fields)
        return Response(channel_json(write), status=201)


class AlertChannelDetailApi(APIView):
    """GET, PATCH and DELETE /api/alerts/channels/{id} (risk admins). PATCH `rotate_secret: true` answers the new
    generated secret once."""

    permission_classes = [AlertPermission]
    required_permissions = {
        "GET": "monitoring.view_notificationchannel",
        "PATCH": "monitoring.change_notificationchannel",
        "DELETE": "monitoring.delete_notificationchannel",
    }

    @extend_schema(responses={200: ChannelOutput})
    def get(self, request: Request, channel_id: int) -> Response:
        query(serializers.Serializer, request)
        channel = selectors.channel_get(channel_id=channel_id)
        if channel is None:
            raise ChannelNotFound()
        return Response(channel_json(channel))

    @extend_schema(
        request=ChannelUpdateInput,
        responses={200: ChannelWriteOutput},
        examples=[OpenApiExample("Rotate the signing secret", value={"rotate_secret": True}, request_only=True)],
    )
    def patch(self, request: Request, channel_id: int) -> Response:
        fields = validated(ChannelUpdateInput, request.data)
        write = alert_channel_update(channel_id=channel_id, actor=request.user, reason=_reason(request), **fields)
        return Response(channel_json(write))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, channel_id: int) -> Response:
        alert_channel_delete(channel_id=channel_id, actor=request.user, reason=_reason(request))
        return Response(status=204)


class ChannelTestOutput(serializers.Serializer):
    delivered = serializers.BooleanField()
    outcome = serializers.ChoiceField(choices=["delivered", "retry", "rejected", "refused"])
    response_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField()


class AlertChannelTestApi(APIView):
    """POST /api/alerts/channels/{id}/test (risk admins): send one test message now and say what happened
    (200 either way: the test ran; `delivered` tells whether the target took it)."""

    permission_classes = [AlertPermission]
    required_permissions = {"POST": "monitoring.change_notificationchannel"}

    @extend_schema(
        request=None,
        responses={200: ChannelTestOutput},
        examples=[
            OpenApiExample(
                "Receiver answered 200",
                value={"delivered": True, "outcome": "delivered", "response_code": 200, "error": "", "duration_ms": 41},
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, channel_id: int) -> Response:
        validated(StrictSerializer, request.data or {})
        result = alert_channel_test(channel_id=channel_id, actor=request.user)
        return Response(
            {
                "delivered": result.outcome == "delivered",
                "outcome": result.outcome,
                "response_code": result.status_code,
                "error": result.error,
                "duration_ms": result.duration_ms,
            }
        )


# ---------------------------------------------------------------------------------------------- events
class EventQuery(serializers.Serializer):
    rule = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    state = serializers.ChoiceField(choices=[kind.value for kind in engine.EventKind], required=False)
    since = serializers.DateTimeField(required=False)


class EventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    rule_id = serializers.IntegerField()
    rule_name = serializers.CharField()
    scope = serializers.CharField()
    account_id = serializers.IntegerField(source="instance_id", allow_null=True)
    figure = serializers.CharField()
    comparator = serializers.CharField()
    threshold = serializers.DecimalField(max_digits=28, decimal_places=8)
    severity = serializers.CharField()
    state = serializers.CharField()
    value = serializers.DecimalField(max_digits=28, decimal_places=8, allow_null=True)
    occurred_at = serializers.DateTimeField()
    fired_at = serializers.DateTimeField()


def event_json(event: AlertEvent) -> dict:
    return EventOutput(event).data


class AlertEventListApi(APIView):
    """GET /api/alerts/events?rule=&state=&since= (operators): firings and resolutions, newest first, paginated.
    `rule` keeps matching the events of a rule deleted since."""

    permission_classes = [AlertPermission]

    @extend_schema(parameters=[EventQuery], responses={200: EventOutput(many=True)})
    def get(self, request: Request) -> Response:
        filters = query(EventQuery, request, also=PAGE_PARAMS)
        events = selectors.alert_event_list(
            rule_id=filters.get("rule"), state=filters.get("state"), since=filters.get("since")
        )
        return _paginated(request, self, events, event_json)
