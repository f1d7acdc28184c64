"""The risk desk in Django admin: positions with the approval workflow, limits (every edit audited), the kill
switch, correlation groups and their members, risk events, and the read-only counters.

Every action calls the same risk services as the API (approve / reject re-run the rules and audit; halt / reduce
/ resume lock the portfolio, audit and raise a risk event), one position or scope at a time, and reports each
outcome (or the 409/503 message) through Django messages. Counters (portfolio, symbol, group and account
exposure) are never editable: only services move them. Limits need no cache invalidation: the check path reads
them from PostgreSQL on every check, so an edit applies to the next check once its transaction commits.
"""

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import DatabaseError, transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from redis import RedisError

from accounts.admin import ADMIN_REASON, TradingInstanceAdmin, UserAdmin
from accounts.models import TradingInstance, User
from accounts.services import ACTIVATION_FIELD, audit_entry_create
from nija.errors import DomainError
from risk import locks
from risk.errors import EquityHoldChanged
from risk.models import (
    CorrelationGroup,
    CorrelationGroupMember,
    EquityHold,
    EquityHoldStatus,
    EquityTransfer,
    Portfolio,
    RiskEvent,
    RiskLimits,
    SymbolExposure,
    TradingState,
)
from risk.services.activation import trading_instance_activation_set, user_activation_set
from risk.services.approval import position_approve, position_reject
from risk.services.equity import equity_hold_confirm, equity_transfer_record
from risk.services.groups import correlation_group_recount
from risk.services.trading_state import trading_halt, trading_resume
from trading.admin import PositionAdmin
from trading.models import Position, PositionStatus
from trading.symbols import canonical_symbol

APPROVE_PERMISSION = "risk.approve_position"
HALT_PERMISSION = "risk.halt_trading"
EQUITY_PERMISSION = "risk.manage_equity"


class ReasonActionForm(helpers.ActionForm):
    """The changelist's action bar with a reason beside the action (kept in the audit record)."""

    reason = forms.CharField(required=False, max_length=1000, label="Reason")


def action_reason(request: HttpRequest) -> str:
    return request.POST.get("reason", "").strip()[:1000]


def run_each(model_admin: admin.ModelAdmin, request: HttpRequest, rows: QuerySet, act: Callable[[Any], str]) -> None:
    """Call `act` for each row in its own service transaction; report its message or why it failed."""
    for row in rows:
        try:
            outcome = act(row)
        except DomainError as exc:
            model_admin.message_user(request, f"{row}: {exc.detail}", messages.ERROR)
        except (DatabaseError, RedisError) as exc:
            model_admin.message_user(request, f"{row}: risk state unavailable ({type(exc).__name__})", messages.ERROR)
        else:
            model_admin.message_user(request, outcome, messages.SUCCESS)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only services write: viewable, never added, changed or deleted by hand."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# ---------------------------------------------------------------------------------------------- instances, users
admin.site.unregister(TradingInstance)
admin.site.unregister(User)


@admin.register(TradingInstance)
class RiskTradingInstanceAdmin(TradingInstanceAdmin):
    """The accounts app's instance admin, with (de)activation going through the risk gate: a deactivated instance
    leaves the portfolio's equity totals, its unfilled reservations are cancelled and its checks refused. The
    accounts admin shows `is_active` read-only (the accounts services refuse it); here it is editable again."""

    actions = ("deactivate",)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple:
        return _activation_editable(super().get_readonly_fields(request, obj))

    def save_model(self, request: HttpRequest, obj: TradingInstance, form, change: bool) -> None:
        if change and "is_active" in form.changed_data:
            outcome = trading_instance_activation_set(
                instance_id=obj.pk, active=form.cleaned_data["is_active"], actor=request.user, reason=ADMIN_REASON
            )
            _report_cancelled(self, request, outcome.cancelled_position_ids)
        super().save_model(request, obj, form, change)  # the other fields (the accounts admin leaves is_active out)

    @admin.action(description="Deactivate selected instances (cancels unfilled reservations)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        def act(instance: TradingInstance) -> str:
            outcome = trading_instance_activation_set(
                instance_id=instance.pk, active=False, actor=request.user, reason="deactivated in admin"
            )
            return f"{instance}: deactivated; {len(outcome.cancelled_position_ids)} reservation(s) cancelled."

        run_each(self, request, queryset.filter(is_active=True).order_by("pk"), act)


@admin.register(User)
class RiskUserAdmin(UserAdmin):
    """The accounts app's user admin, with (de)activation going through the risk gate for each of the user's
    accounts (see RiskTradingInstanceAdmin); the bots of a deactivated user can still report fills and closes."""

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple:
        return _activation_editable(super().get_readonly_fields(request, obj))

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        if change and "is_active" in form.changed_data:
            outcome = user_activation_set(
                user_id=obj.pk, active=form.cleaned_data["is_active"], actor=request.user, reason=ADMIN_REASON
            )
            _report_cancelled(self, request, outcome.cancelled_position_ids)
        super().save_model(request, obj, form, change)  # the other fields (the accounts admin leaves is_active out)


def _activation_editable(readonly_fields: tuple) -> tuple:
    """The accounts admin's read-only fields without `is_active`: this admin changes it through the activation
    service (save_model), the one writer of it."""
    return tuple(field for field in readonly_fields if field != ACTIVATION_FIELD)


def _report_cancelled(model_admin: admin.ModelAdmin, request: HttpRequest, position_ids: tuple[int, ...]) -> None:
    if position_ids:
        model_admin.message_user(request, f"{len(position_ids)} unfilled reservation(s) cancelled.", messages.INFO)


# ---------------------------------------------------------------------------------------------- positions
admin.site.unregister(Position)


@admin.register(Position)
class RiskPositionAdmin(PositionAdmin):
    """Trading's read-only position admin plus the approval workflow (approver role)."""

    actions = ("approve", "reject")
    action_form = ReasonActionForm

    def has_approve_position_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        """Approvers see the positions they decide, with or without trading's view permission."""
        return super().has_view_permission(request, obj) or self.has_approve_position_permission(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self.has_approve_position_permission(request)

    @admin.action(description="Approve selected positions (re-runs every rule)", permissions=["approve_position"])
    def approve(self, request: HttpRequest, queryset: QuerySet) -> None:
        reason = action_reason(request) or "approved in admin"

        def act(position: Position) -> str:
            decided = position_approve(position_id=position.pk, actor=request.user, reason=reason)
            if decided.status == PositionStatus.APPROVED:
                return f"{decided}: approved."
            failing = "; ".join(item["message"] for item in decided.reasons)
            return f"{decided}: rejected at approval, the rules no longer pass: {failing}"

        run_each(self, request, queryset.order_by("pk"), act)

    @admin.action(description="Reject selected positions", permissions=["approve_position"])
    def reject(self, request: HttpRequest, queryset: QuerySet) -> None:
        reason = action_reason(request)
        if not reason:
            self.message_user(request, "A rejection needs a reason: nothing was rejected.", messages.ERROR)
            return

        def act(position: Position) -> str:
            decided = position_reject(position_id=position.pk, actor=request.user, reason=reason)
            return f"{decided}: rejected."

        run_each(self, request, queryset.order_by("pk"), act)


# ---------------------------------------------------------------------------------------------- limits
class RiskLimitsForm(forms.ModelForm):
    change_reason = forms.CharField(required=False, max_length=500, help_text="Why (kept in the audit record).")

    class Meta:
        model = RiskLimits
        fields = ["instance", *RiskLimits.LIMIT_FIELDS]

    def clean(self) -> dict:
        data = super().clean()
        instance = data.get("instance") if "instance" in self.fields else self.instance.instance
        missing = [name for name in RiskLimits.LIMIT_FIELDS if name in data and data[name] is None]
        if instance is None and missing:
            raise forms.ValidationError(
                {
                    name: "The portfolio default sets every limit (an account override may leave it empty)."
                    for name in missing
                }
            )
        return data


def limits_audit_values(limits: RiskLimits, names: list[str]) -> dict:
    return {name: getattr(limits, name) for name in names}


@admin.register(RiskLimits)
class RiskLimitsAdmin(admin.ModelAdmin):
    """The portfolio default (every limit) and per-account overrides (empty = the default). Every create, change
    and delete writes an audit entry with the values before and after."""

    form = RiskLimitsForm
    list_display = (
        "__str__",
        "max_position_pct",
        "max_account_exposure_pct",
        "max_portfolio_exposure_pct",
        "max_symbol_exposure_pct",
        "max_total_positions",
        "approval_threshold",
        "updated_at",
    )
    list_select_related = ("instance",)
    raw_id_fields = ("instance",)
    search_fields = ("instance__name",)
    ordering = ("instance_id",)
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: RiskLimits | None = None) -> tuple:
        return ("instance",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: RiskLimits | None = None) -> bool:
        if obj is not None and obj.instance_id is None:
            return False  # the portfolio default always exists
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: RiskLimits, form: RiskLimitsForm, change: bool) -> None:
        changed = [name for name in RiskLimits.LIMIT_FIELDS if name in form.changed_data]
        with transaction.atomic():
            before = None
            if change:
                before = limits_audit_values(RiskLimits.objects.select_for_update().get(pk=obj.pk), changed)
            super().save_model(request, obj, form, change)
            if change and not changed:
                return
            obj.refresh_from_db(fields=changed)  # the values as stored (NUMERIC scale), as `before` shows them
            audit_entry_create(
                actor=request.user,
                action="risk_limits.change" if change else "risk_limits.create",
                target=obj,
                before=before,
                after={"account_id": obj.instance_id} | limits_audit_values(obj, changed),
                reason=form.cleaned_data.get("change_reason") or ADMIN_REASON,
            )

    def delete_model(self, request: HttpRequest, obj: RiskLimits) -> None:
        with transaction.atomic():
            audit_entry_create(
                actor=request.user,
                action="risk_limits.delete",
                target=obj,
                before={"account_id": obj.instance_id} | limits_audit_values(obj, list(RiskLimits.LIMIT_FIELDS)),
                after=None,
                reason=ADMIN_REASON,
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for limits in queryset.filter(instance__isnull=False):
            self.delete_model(request, limits)


# ---------------------------------------------------------------------------------------------- kill switch
@admin.register(TradingState)
class TradingStateAdmin(ReadOnlyAdmin):
    """The kill switch: states are shown read-only and changed only by the actions (risk admin role), which call
    the same services as POST /api/risk/halt and /resume (a HALT cancels the scope's unfilled reservations)."""

    list_display = ("scope", "state", "reason", "changed_by", "changed_at")
    list_filter = ("state",)
    list_select_related = ("instance", "changed_by")
    search_fields = ("instance__name", "reason")
    ordering = (F("instance_id").asc(nulls_first=True),)  # the portfolio first
    actions = ("halt", "reduce_only", "resume")
    action_form = ReasonActionForm

    @admin.display(description="scope")
    def scope(self, state: TradingState) -> str:
        return str(state.instance) if state.instance_id else "Portfolio"

    def has_halt_trading_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(HALT_PERMISSION)

    def _change(self, request: HttpRequest, queryset: QuerySet, mode: str | None) -> None:
        reason = action_reason(request)
        if not reason:
            self.message_user(
                request, "Changing the trading state needs a reason: nothing was changed.", messages.ERROR
            )
            return

        def act(state: TradingState) -> str:
            now = timezone.now()
            if mode is None:
                change = trading_resume(instance_id=state.instance_id, reason=reason, actor=request.user, now=now)
            else:
                change = trading_halt(
                    instance_id=state.instance_id, mode=mode, reason=reason, actor=request.user, now=now
                )
            cancelled = f"; {len(change.cancelled_position_ids)} reservation(s) cancelled" if mode == "halted" else ""
            return f"{self.scope(state)}: {change.state.state} (was {change.previous}){cancelled}."

        run_each(self, request, queryset, act)

    @admin.action(description="HALT trading (cancels unfilled reservations)", permissions=["halt_trading"])
    def halt(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._change(request, queryset, "halted")

    @admin.action(description="Set REDUCING (reduce-only)", permissions=["halt_trading"])
    def reduce_only(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._change(request, queryset, "reducing")

    @admin.action(description="Resume trading (ACTIVE)", permissions=["halt_trading"])
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._change(request, queryset, None)


# ---------------------------------------------------------------------------------------------- groups
class CorrelationGroupMemberForm(forms.ModelForm):
    class Meta:
        model = CorrelationGroupMember
        fields = ["symbol"]

    def clean_symbol(self) -> str:
        try:
            return canonical_symbol(self.cleaned_data["symbol"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class CorrelationGroupMemberInline(admin.TabularInline):
    model = CorrelationGroupMember
    form = CorrelationGroupMemberForm
    extra = 1


def group_audit_values(group: CorrelationGroup) -> dict:
    symbols = sorted(CorrelationGroupMember.objects.filter(group_id=group.pk).values_list("symbol", flat=True))
    return {"name": group.name, "limit_pct": group.limit_pct, "symbols": symbols}


@admin.register(CorrelationGroup)
class CorrelationGroupAdmin(admin.ModelAdmin):
    """Symbols that move together and their common exposure limit. Saving recounts the group's exposure from the
    positions (membership changes what it holds) and audits the change."""

    list_display = ("name", "limit_pct", "exposure", "symbols", "updated_at")
    search_fields = ("name", "members__symbol")
    readonly_fields = ("exposure", "created_at", "updated_at")
    fields = ("name", "limit_pct", "description", "exposure", "created_at", "updated_at")
    inlines = (CorrelationGroupMemberInline,)
    ordering = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("members")

    @admin.display(description="symbols")
    def symbols(self, group: CorrelationGroup) -> str:
        return ", ".join(sorted(member.symbol for member in group.members.all()))

    def save_model(self, request: HttpRequest, obj: CorrelationGroup, form: forms.ModelForm, change: bool) -> None:
        """The portfolio lock first (the admin's change view is one transaction): writing the group row or its
        members before it could deadlock with a check that holds the portfolio and waits for the group."""
        locks.lock_portfolio()
        form.audit_before = group_audit_values(CorrelationGroup.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: CorrelationGroup) -> None:
        with transaction.atomic():
            locks.lock_portfolio()
            audit_entry_create(
                actor=request.user,
                action="correlation_group.delete",
                target=obj,
                before=group_audit_values(obj),
                after=None,
                reason=ADMIN_REASON,
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for group in queryset:
            self.delete_model(request, group)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: list, change: bool) -> None:
        """Members first, then the exposure recount (portfolio, then group lock), then the audit entry."""
        super().save_related(request, form, formsets, change)
        group = correlation_group_recount(group=form.instance)
        audit_entry_create(
            actor=request.user,
            action="correlation_group.change" if change else "correlation_group.create",
            target=group,
            before=form.audit_before,
            after=group_audit_values(group) | {"exposure": group.exposure},
            reason=ADMIN_REASON,
        )


# ---------------------------------------------------------------------------------------------- equity
@admin.register(EquityHold)
class EquityHoldAdmin(ReadOnlyAdmin):
    """Reported equity increases held back (beyond max_equity_increase_pct over the last accepted figure or the
    account's start of the day, or a figure confirmed today; for a first report, over the starting balance, so an
    account left at starting balance 0 has its first report held here). Confirming (risk admin) shows each held
    figure as it is now, then applies exactly the figures shown, audited; a deposit is recorded as a transfer
    instead, and a later report within bounds supersedes the hold."""

    list_display = ("id", "instance", "status", "equity", "accepted_equity", "reports", "reported_at", "resolved_by")
    list_filter = ("status",)
    list_select_related = ("instance", "resolved_by")
    search_fields = ("instance__name",)
    raw_id_fields = ("instance",)
    ordering = ("-id",)
    actions = ("confirm",)
    action_form = ReasonActionForm

    def has_manage_equity_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EQUITY_PERMISSION)

    @admin.action(description="Confirm the held equity (shows the figures first)", permissions=["manage_equity"])
    def confirm(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """First a page showing each selected open hold's figure as it is now; submitting it applies exactly those
        figures. The changelist may be minutes old and a bot can replace its held figure at any moment: an
        operator never applies a figure they were not shown (a replaced one is refused, nothing applied)."""
        reason = action_reason(request)
        if not reason:
            self.message_user(request, "Confirming held equity needs a reason: nothing was applied.", messages.ERROR)
            return None
        holds = queryset.filter(status=EquityHoldStatus.OPEN).select_related("instance").order_by("pk")
        if request.POST.get("figures_shown") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "holds": holds,
                "reason": reason,
                "changelist_url": reverse("admin:risk_equityhold_changelist"),
            }
            return TemplateResponse(request, "admin/risk/equityhold/confirm_figures.html", context)

        def act(hold: EquityHold) -> str:
            confirmed = equity_hold_confirm(
                instance_id=hold.instance_id,
                actor=request.user,
                reason=reason,
                expected_equity=shown_figure(request, hold),
            )
            return f"Account #{confirmed.instance_id}: equity {confirmed.equity} applied."

        run_each(self, request, holds, act)
        return None


def shown_figure(request: HttpRequest, hold: EquityHold) -> Decimal:
    """The figure of `hold` the confirmation page showed (posted back with it); none, or not a number: refused."""
    try:
        return Decimal(request.POST[f"shown_equity_{hold.pk}"])
    except (KeyError, InvalidOperation):
        raise EquityHoldChanged("The confirmation page did not show this hold's figure; nothing applied.") from None


class EquityTransferForm(forms.ModelForm):
    class Meta:
        model = EquityTransfer
        fields = ["instance", "amount", "reference", "reason"]
        help_texts = {
            "amount": "Signed: a deposit is positive, a withdrawal negative. Record it before the bot reports the new "
            "balance, or that report is held (a deposit) or counted as a loss (a withdrawal).",
            "reference": "Yours (the exchange's transfer id, say); unique per account: recording it again changes "
            "nothing.",
        }

    def clean_amount(self) -> object:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("A transfer moves money: the amount cannot be 0.")
        return amount


@admin.register(EquityTransfer)
class EquityTransferAdmin(admin.ModelAdmin):
    """Deposits and withdrawals recorded by operators (risk admin): they move the account's equity, peak and
    start-of-day equity together, never held and never counted as P&L. Recorded, never edited or deleted."""

    form = EquityTransferForm
    list_display = (
        "id",
        "instance",
        "amount",
        "reference",
        "equity_before",
        "equity_after",
        "recorded_by",
        "recorded_at",
    )
    list_select_related = ("instance", "recorded_by")
    search_fields = ("instance__name", "reference", "reason")
    raw_id_fields = ("instance",)
    ordering = ("-id",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EQUITY_PERMISSION)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """A transfer the service refuses under the account's lock (a withdrawal beyond the equity) is an error
        message on a fresh add page; the admin's transaction has rolled back, nothing was recorded."""
        try:
            return super().add_view(request, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, f"Nothing was recorded: {exc.detail}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request: HttpRequest, obj: EquityTransfer, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        outcome = equity_transfer_record(
            instance_id=data["instance"].pk,
            amount=data["amount"],
            reference=data["reference"],
            reason=data["reason"],
            actor=request.user,
        )
        obj.pk = outcome.transfer.pk
        obj._state.adding = False


# ---------------------------------------------------------------------------------------------- read-only
@admin.register(RiskEvent)
class RiskEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "severity", "type", "instance", "message", "correlation_id")
    list_filter = ("severity", "type")
    list_select_related = ("instance",)
    search_fields = ("message", "correlation_id", "instance__name")
    date_hierarchy = "created_at"
    raw_id_fields = ("instance",)
    ordering = ("-created_at", "-id")


@admin.register(Portfolio)
class PortfolioAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "equity", "day_start_equity", "exposure", "position_count", "counters_verified_at")


@admin.register(SymbolExposure)
class SymbolExposureAdmin(ReadOnlyAdmin):
    list_display = ("symbol", "exposure", "position_count", "updated_at")
    search_fields = ("symbol",)
    ordering = ("symbol",)
