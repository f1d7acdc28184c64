"""Alerts in the operator's cockpit: rules (every change through the audited services), channels with write-only
secrets and a "send test" action, and read-only states, events and deliveries with their attempts.

A signing secret the service generates is shown once, in the answer to the POST that created or rotated it (a
page of its own, never a message that would be stored in the session or a cookie).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from monitoring.alerts.errors import InvalidRule
from monitoring.alerts.models import (
    AlertDelivery,
    AlertDeliveryAttempt,
    AlertEvent,
    AlertRule,
    AlertState,
    ChannelKind,
    NotificationChannel,
)
from monitoring.alerts.services.channels import (
    alert_channel_create,
    alert_channel_delete,
    alert_channel_test,
    alert_channel_update,
    apprise_url_problem,
    secret_problem,
    webhook_url_problem,
)
from monitoring.alerts.services.rules import (
    RULE_FIELDS,
    alert_rule_check,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
)
from risk.admin import ReadOnlyAdmin

ADMIN_REASON = "edited in admin"


def _adopt(obj: Any, created: Any) -> None:
    """Make the admin's unsaved `obj` stand for the row a service created (for its redirect and log entry)."""
    obj.pk = created.pk
    obj._state.adding = False


def _field_errors(form: forms.Form, error: InvalidRule) -> None:
    for field, problems in (error.fields or {}).items():
        name = {"account_id": "instance", "channel_ids": "channels"}.get(field, field)
        form.add_error(name if name in form.fields else None, problems)


# ---------------------------------------------------------------------------------------------- rules
# The service's fields, with the account as the model's foreign key, and the channels.
RULE_FORM_FIELDS = [*("instance" if field == "instance_id" else field for field in RULE_FIELDS), "channels"]


class AlertRuleForm(forms.ModelForm):
    """Checked by the same service that saves it: a problem shows beside its field and nothing is written."""

    class Meta:
        model = AlertRule
        fields = RULE_FORM_FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        values = {field: data.get(field) for field in RULE_FIELDS if field != "instance_id"}
        values["instance_id"] = data["instance"].pk if data.get("instance") else None
        try:
            alert_rule_check(values, [channel.pk for channel in data.get("channels", [])])
        except InvalidRule as error:
            _field_errors(self, error)
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = AlertRuleForm
    list_display = tuple(field for field in RULE_FORM_FIELDS if field not in ("description", "channels"))
    list_filter = ("enabled", "scope", "figure", "severity")
    search_fields = ("name", "description")
    raw_id_fields = ("instance",)
    filter_horizontal = ("channels",)
    list_select_related = ("instance",)
    readonly_fields = ("created_at", "updated_at")

    def _values(self, form: forms.ModelForm) -> dict[str, Any]:
        data = form.cleaned_data
        values = {field: data.get(field) for field in RULE_FIELDS if field in data}
        values["account_id"] = data["instance"].pk if data.get("instance") else None
        values["channel_ids"] = [channel.pk for channel in data.get("channels", [])]
        return values

    def save_form(self, request: HttpRequest, form: forms.ModelForm, change: bool) -> AlertRule:
        return form.instance  # the services write (save_model)

    def save_model(self, request: HttpRequest, obj: AlertRule, form: forms.ModelForm, change: bool) -> None:
        values = self._values(form)
        values.pop("instance_id", None)
        if change:
            alert_rule_update(rule_id=obj.pk, actor=request.user, reason=ADMIN_REASON, **values)
        else:
            _adopt(obj, alert_rule_create(actor=request.user, reason=ADMIN_REASON, **values))

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """The channels were set by the service."""

    def delete_model(self, request: HttpRequest, obj: AlertRule) -> None:
        alert_rule_delete(rule_id=obj.pk, actor=request.user, reason="deleted in admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for rule in queryset:
            alert_rule_delete(rule_id=rule.pk, actor=request.user, reason="deleted in admin")


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = ("rule", "instance", "status", "value", "breach_since", "fired_at", "resolved_at", "changed_at")
    list_filter = ("status", "rule")
    search_fields = ("rule__name",)
    list_select_related = ("rule", "instance")
    raw_id_fields = ("instance",)


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "rule_name", "state", "severity", "scope", "instance", "figure", "value")
    list_filter = ("state", "severity", "figure", "scope")
    search_fields = ("rule_name",)
    list_select_related = ("instance",)
    date_hierarchy = "occurred_at"


# ---------------------------------------------------------------------------------------------- channels
class NotificationChannelForm(forms.ModelForm):
    """The target and the secret are write-only: the Apprise URL and the secret are never put back in the page."""

    url = forms.CharField(
        max_length=2000,
        required=False,
        help_text="The webhook URL (shown), or an Apprise URL such as tgram://bot-token/chat-id (never shown "
        "again). Leave empty to keep the current one.",
    )
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhooks: a Standard Webhooks secret (whsec_...). Leave empty to keep it, or on creation to have "
        "one generated and shown once.",
    )
    rotate_secret = forms.BooleanField(required=False, help_text="Generate a new signing secret, shown once.")

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "url", "secret", "rotate_secret", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["kind"].disabled = True
            self.fields["url"].initial = self.instance.webhook_url  # empty for Apprise: never shown
        else:
            self.fields["url"].required = True

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind") or self.instance.kind
        if data.get("url"):
            problem = (
                webhook_url_problem(data["url"]) if kind == ChannelKind.WEBHOOK else apprise_url_problem(data["url"])
            )
            if problem:
                self.add_error("url", problem)
        if data.get("secret"):
            problem = secret_problem(data["secret"]) if kind == ChannelKind.WEBHOOK else "Only a webhook has a secret."
            if problem:
                self.add_error("secret", problem)
        return data


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = NotificationChannelForm
    list_display = ("name", "kind", "target", "enabled", "updated_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "webhook_url")
    actions = ("send_test",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer(*NotificationChannel.SECRET_FIELDS)

    @admin.display(description="target")
    def target(self, channel: NotificationChannel) -> str:
        return channel.webhook_url if channel.kind == ChannelKind.WEBHOOK else channel.target_hint

    def save_form(self, request: HttpRequest, form: forms.ModelForm, change: bool) -> NotificationChannel:
        return form.instance  # the services write (save_model)

    def save_model(self, request: HttpRequest, obj: NotificationChannel, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {field: data[field] for field in ("name", "enabled") if field in form.changed_data}
            if data.get("url"):
                changes["url"] = data["url"]
            if data.get("secret"):
                changes["secret"] = data["secret"]
            write = alert_channel_update(
                channel_id=obj.pk,
                actor=request.user,
                reason=ADMIN_REASON,
                rotate_secret=bool(data.get("rotate_secret")),
                **changes,
            )
        else:
            write = alert_channel_create(
                actor=request.user,
                name=data["name"],
                kind=data["kind"],
                url=data["url"],
                secret=data.get("secret") or None,
                enabled=data["enabled"],
                reason=ADMIN_REASON,
            )
            _adopt(obj, write.channel)
        request._nija_revealed_secret = write.revealed_secret  # only for this request's response

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """Nothing related to save: the service wrote the channel."""

    def response_add(self, request: HttpRequest, obj: NotificationChannel, post_url_continue: Any = None):
        return self._secret_page(request, obj) or super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: NotificationChannel):
        return self._secret_page(request, obj) or super().response_change(request, obj)

    def _secret_page(self, request: HttpRequest, obj: NotificationChannel) -> HttpResponse | None:
        """The generated secret in the answer to this POST itself, once, never cached."""
        secret = getattr(request, "_nija_revealed_secret", None)
        if secret is None:
            return None
        context = {
            **self.admin_site.each_context(request),
            "channel": obj,
            "secret": secret,
            "opts": self.opts,
            "changelist_url": reverse("admin:monitoring_notificationchannel_changelist"),
        }
        response = TemplateResponse(request, "admin/monitoring/notificationchannel/secret_shown.html", context)
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
        return response

    def delete_model(self, request: HttpRequest, obj: NotificationChannel) -> None:
        alert_channel_delete(channel_id=obj.pk, actor=request.user, reason="deleted in admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset:
            alert_channel_delete(channel_id=channel.pk, actor=request.user, reason="deleted in admin")

    @admin.action(description="Send a test message to the selected channels", permissions=["change"])
    def send_test(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset:
            result = alert_channel_test(channel_id=channel.pk, actor=request.user)
            if result.outcome == "delivered":
                code = f" (HTTP {result.status_code})" if result.status_code else ""
                self.message_user(request, f"{channel.name}: delivered{code}.", messages.SUCCESS)
            else:
                self.message_user(request, f"{channel.name}: {result.outcome}: {result.error}", messages.ERROR)


# ---------------------------------------------------------------------------------------------- deliveries
class AlertDeliveryAttemptInline(admin.TabularInline):
    model = AlertDeliveryAttempt
    fields = ("number", "started_at", "finished_at", "outcome", "response_code", "error", "duration_ms")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "channel_name",
        "kind",
        "status",
        "attempts",
        "last_response_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "kind")
    search_fields = ("channel_name",)
    inlines = [AlertDeliveryAttemptInline]
    exclude = ("channel",)
