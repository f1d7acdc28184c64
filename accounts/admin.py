"""The operator's cockpit for accounts: users with their limits and tokens, masked broker credentials,
trading instances (risk accounts), API tokens (created once, revoked, never shown again) and the read-only
audit record. Every change goes through accounts.services (audited; caches refreshed after commit).
"""

from contextvars import ContextVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.text import Truncator

from accounts.models import ApiToken, AuditEntry, BrokerCredential, TradingInstance, User, UserPermission
from accounts.selectors import broker_credential_list_masked
from accounts.services import (
    ACTIVATION_FIELD,
    CREDENTIAL_FIELDS,
    INSTANCE_OPERATOR_FIELDS,
    PERMISSION_FIELDS,
    USER_FIELDS,
    USER_M2M_FIELDS,
    api_token_check_owner,
    api_token_create,
    api_token_revoke,
    broker_credential_check_label,
    broker_credential_create,
    broker_credential_update,
    broker_credential_update_secrets,
    canonical_symbols,
    trading_instance_check_credential,
    trading_instance_create,
    trading_instance_update,
    user_create,
    user_delete,
    user_password_set,
    user_permission_ensure,
    user_permission_update,
    user_update,
)

ADMIN_REASON = "edited in admin"


def _adopt(obj, created) -> None:
    """Make the admin's unsaved `obj` stand for the row a service created (for its redirect and log entry)."""
    obj.pk = created.pk
    obj._state.adding = False


# ------------------------------------------------------------------------------------------------
# Users, their trading limits and their tokens
# ------------------------------------------------------------------------------------------------
class UserPermissionForm(forms.ModelForm):
    change_reason = forms.CharField(required=False, max_length=500, help_text="Why (kept in the audit record).")

    class Meta:
        model = UserPermission
        fields = [*PERMISSION_FIELDS]

    def clean_allowed_symbols(self) -> object:
        return canonical_symbols(self.cleaned_data["allowed_symbols"])  # the model's validator then checks them


def _save_permission(request: HttpRequest, form: forms.ModelForm, user: User) -> None:
    """Write an admin edit of a UserPermission through the service (audit + cache refresh after commit)."""
    permission = form.instance if form.instance.pk else user_permission_ensure(user=user)
    changes = {field: form.cleaned_data[field] for field in form.changed_data if field in PERMISSION_FIELDS}
    reason = form.cleaned_data.get("change_reason") or ADMIN_REASON
    saved = user_permission_update(permission=permission, actor=request.user, reason=reason, **changes)
    form.instance = saved


class UserPermissionInline(admin.StackedInline):
    model = UserPermission
    form = UserPermissionForm
    can_delete = False
    max_num = 1
    extra = 1


class ApiTokenInline(admin.TabularInline):
    model = ApiToken
    fk_name = "user"
    fields = ("prefix", "name", "kind", "instance", "last_used_at", "revoked_at", "created_at")
    readonly_fields = fields
    can_delete = False
    extra = 0
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("instance")


# The operator changing a password, for AuditedPasswordChangeForm.save (Django's view builds the form itself).
_password_actor: ContextVar[User | None] = ContextVar("password_actor", default=None)


class AuditedPasswordChangeForm(AdminPasswordChangeForm):
    """Django's admin password form, saved through the audited `user_password_set` service."""

    def save(self, commit: bool = True) -> User:
        password = self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None
        saved = user_password_set(
            user=self.user, password=password, actor=_password_actor.get(), reason="password changed in admin"
        )
        self.user.password = saved.password  # the view re-hashes the operator's own session from it
        return saved


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "subscription_tier", "is_staff", "is_active", "date_joined")
    list_filter = ("subscription_tier", "is_staff", "is_active", "groups")
    search_fields = ("username", "email")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Subscription", {"fields": ("subscription_tier",)}))
    add_fieldsets = (*DjangoUserAdmin.add_fieldsets, ("Subscription", {"fields": ("email", "subscription_tier")}))
    inlines = [UserPermissionInline, ApiTokenInline]
    readonly_fields = ("last_login", "date_joined")  # records, not settings

    change_password_form = AuditedPasswordChangeForm

    def get_inlines(self, request: HttpRequest, obj) -> list:
        return self.inlines if obj is not None else []

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple:
        # Activation moves the portfolio's equity: only risk.services.activation changes it (risk/admin.py makes
        # it editable through that service).
        return self.readonly_fields if obj is None else (*self.readonly_fields, ACTIVATION_FIELD)

    def save_form(self, request: HttpRequest, form, change: bool) -> User:
        return form.instance  # the services write (save_model): nothing is saved or hashed by the form itself

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        """Through the audited services: user_create on add; user_update (fields and roles) on change, which
        rewrites the user's cached tokens after commit."""
        data = form.cleaned_data
        if not change:
            password = data["password1"] if data.get("set_usable_password", True) else None
            created = user_create(
                username=data["username"],
                email=data["email"],
                password=password,
                subscription_tier=data["subscription_tier"],
                actor=request.user,
                reason=ADMIN_REASON,
            )
            _adopt(obj, created)
            return
        editable = (*USER_FIELDS, *USER_M2M_FIELDS)
        changes = {field: data[field] for field in form.changed_data if field in editable}
        user_update(user=obj, actor=request.user, reason=ADMIN_REASON, **changes)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        # Groups and user permissions were written by user_update (audited); only the inlines are left.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def get_deleted_objects(self, objs, request: HttpRequest) -> tuple:
        """Tokens and the permission row go with their user (user_delete tombstones the tokens): their admins
        refuse a delete of their own, which must not forbid deleting a user without history."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        cascaded = {str(ApiToken._meta.verbose_name), str(UserPermission._meta.verbose_name)}
        return deleted, counts, set(perms_needed) - cascaded, protected

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        user_delete(user=obj, actor=request.user, reason="deleted in admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for user in queryset:
            user_delete(user=user, actor=request.user, reason="deleted in admin")

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        token = _password_actor.set(request.user)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _password_actor.reset(token)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        if formset.model is not UserPermission:
            return super().save_formset(request, form, formset, change)
        # The bookkeeping formset.save() would do, for the admin's change message.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if inline_form.has_changed():
                created = inline_form.instance.pk is None
                _save_permission(request, inline_form, form.instance)
                if created:
                    formset.new_objects.append(inline_form.instance)
                else:
                    formset.changed_objects.append((inline_form.instance, inline_form.changed_data))
        return None


@admin.register(UserPermission)
class UserPermissionAdmin(admin.ModelAdmin):
    form = UserPermissionForm
    list_display = ("user", "can_trade", "max_position_size", "max_daily_loss", "max_open_positions", "updated_at")
    list_filter = ("can_trade", "user__subscription_tier")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    readonly_fields = ("user", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one row per user, created with the user

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: UserPermission, form, change: bool) -> None:
        _save_permission(request, form, obj.user)


# ------------------------------------------------------------------------------------------------
# Broker credentials: secrets are write-only inputs, displayed as ****last4 only
# ------------------------------------------------------------------------------------------------
class BrokerCredentialForm(forms.ModelForm):
    """The encrypted fields are not model-form fields: these inputs never render a value back."""

    new_api_key = forms.CharField(label="API key", required=False, widget=forms.PasswordInput(render_value=False))
    new_api_secret = forms.CharField(label="API secret", required=False, widget=forms.PasswordInput(render_value=False))
    new_passphrase = forms.CharField(label="Passphrase", required=False, widget=forms.PasswordInput(render_value=False))

    class Meta:
        model = BrokerCredential
        fields = ["user", "broker", "label", "is_active"]

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.instance.pk is None:
            for field in ("new_api_key", "new_api_secret"):
                if not cleaned.get(field):
                    self.add_error(field, "Required for a new credential.")
        elif cleaned.get("label"):  # the user is read-only here, so the model form skips the (user, label) check
            try:
                broker_credential_check_label(
                    user_id=self.instance.user_id, label=cleaned["label"], exclude_pk=self.instance.pk
                )
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned


@admin.register(BrokerCredential)
class BrokerCredentialAdmin(admin.ModelAdmin):
    form = BrokerCredentialForm
    list_display = ("label", "broker", "user", "masked_api_key", "is_active", "created_at")
    list_filter = ("broker", "is_active")
    search_fields = ("label", "broker", "user__username")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("masked_api_key", "created_at", "updated_at")
    fields = (
        "user",
        "broker",
        "label",
        "is_active",
        "masked_api_key",
        "new_api_key",
        "new_api_secret",
        "new_passphrase",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple:
        # A credential never moves to another user: instances of its user trade with it.
        return (*self.readonly_fields, "user") if obj is not None else self.readonly_fields

    @admin.display(description="API key")
    def masked_api_key(self, obj: BrokerCredential) -> str:
        return f"****{obj.api_key_last4}" if obj.api_key_last4 else "—"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # No page of this admin needs (nor decrypts) the secrets: they are write-only inputs.
        return super().get_queryset(request).defer(*BrokerCredential.SECRET_FIELDS)

    def save_model(self, request: HttpRequest, obj: BrokerCredential, form, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = broker_credential_create(
                user=data["user"],
                broker=data["broker"],
                label=data["label"],
                api_key=data["new_api_key"],
                api_secret=data["new_api_secret"],
                passphrase=data["new_passphrase"] or None,
                actor=request.user,
            )
            _adopt(obj, created)
            return
        changes = {field: data[field] for field in form.changed_data if field in CREDENTIAL_FIELDS}
        broker_credential_update(credential=obj, actor=request.user, reason=ADMIN_REASON, **changes)
        broker_credential_update_secrets(
            credential=obj,
            actor=request.user,
            reason=ADMIN_REASON,
            api_key=data["new_api_key"],
            api_secret=data["new_api_secret"],
            passphrase=data["new_passphrase"],
        )


# ------------------------------------------------------------------------------------------------
# Trading instances (risk accounts)
# ------------------------------------------------------------------------------------------------
class MaskedCredentialRawIdWidget(ForeignKeyRawIdWidget):
    """The raw-id widget of a credential foreign key, labelled `broker:label (****last4)` from a row loaded
    without its secrets (Django's own widget loads, and so decrypts, the whole row)."""

    def label_and_url_for_value(self, value: object) -> tuple[str, str]:
        try:
            credential = broker_credential_list_masked().filter(pk=value).first()
        except (ValueError, TypeError):
            return "", ""
        if credential is None:
            return "", ""
        url = reverse("admin:accounts_brokercredential_change", args=[credential.pk], current_app=self.admin_site.name)
        return Truncator(str(credential)).words(14), url


class TradingInstanceForm(forms.ModelForm):
    class Meta:
        model = TradingInstance
        # What an operator sets; equity, peaks, heartbeats and counters come from the bot and the risk services.
        fields = ["user", "broker_credential", "name", "status", "is_active", "starting_balance"]

    def clean(self) -> dict:
        """The credential must be the instance's user's (the user is read-only once the instance exists)."""
        cleaned = super().clean()
        user = cleaned.get("user") if "user" in self.fields else self.instance.user
        if user is not None and "broker_credential" not in self.errors:
            try:
                trading_instance_check_credential(user_id=user.pk, credential=cleaned.get("broker_credential"))
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned


@admin.register(TradingInstance)
class TradingInstanceAdmin(admin.ModelAdmin):
    form = TradingInstanceForm
    list_display = (
        "name",
        "user",
        "status",
        "equity",
        "equity_counted",
        "exposure",
        "position_count",
        "last_heartbeat",
        "heartbeat_lost_at",
        "is_active",
    )
    list_filter = (
        "status",
        "is_active",
        "equity_counted",
        ("heartbeat_lost_at", admin.EmptyFieldListFilter),  # "Not empty": silent bots (the heartbeat watchdog)
        "user__subscription_tier",
    )
    search_fields = ("name", "user__username", "user__email")
    list_select_related = ("user",)
    raw_id_fields = ("user", "broker_credential")
    show_full_result_count = False
    readonly_fields = (
        "equity",
        "cash_balance",
        "peak_equity",
        "day_start_equity",
        "day_start_date",
        "exposure",
        "position_count",
        "equity_counted",
        "last_heartbeat",
        "heartbeat_lost_at",
        "equity_reported_at",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple:
        # A new instance starts at zero; its equity comes from its bot's first report (measured against the
        # starting balance, which stays editable: see its help text). Activation moves the portfolio's equity:
        # only risk.services.activation changes it (risk/admin.py makes it editable through that service).
        return self.readonly_fields if obj is None else (*self.readonly_fields, "user", ACTIVATION_FIELD)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "broker_credential":
            # Validating and labelling the choice needs broker, label, last4 and the owner: never the secrets.
            kwargs["queryset"] = broker_credential_list_masked()
            kwargs["widget"] = MaskedCredentialRawIdWidget(
                db_field.remote_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # instances with history are deactivated, never deleted

    def save_model(self, request: HttpRequest, obj: TradingInstance, form, change: bool) -> None:
        if not change:
            data = form.cleaned_data
            created = trading_instance_create(
                user=data["user"],
                name=data["name"],
                broker_credential=data["broker_credential"],
                status=data["status"],
                is_active=data["is_active"],
                starting_balance=data["starting_balance"],
                actor=request.user,
                reason=ADMIN_REASON,
            )
            _adopt(obj, created)
            return
        changes = {field: form.cleaned_data[field] for field in form.changed_data if field in INSTANCE_OPERATOR_FIELDS}
        trading_instance_update(instance=obj, actor=request.user, reason=ADMIN_REASON, **changes)


# ------------------------------------------------------------------------------------------------
# API tokens: the raw token is shown once, on the page answering the creation; the digest never
# ------------------------------------------------------------------------------------------------
class ApiTokenCreateForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["kind", "user", "instance", "name"]

    def clean(self) -> dict:
        """The service's owner rules as form errors (operator tokens for staff, a bot token on the user's own
        instance), so an invalid owner re-renders the form instead of failing in save_model."""
        cleaned = super().clean()
        kind, user = cleaned.get("kind"), cleaned.get("user")
        if kind and user is not None and "instance" not in self.errors:
            try:
                api_token_check_owner(kind=kind, user=user, instance=cleaned.get("instance"))
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin) -> list:
        return [("no", "Active"), ("yes", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "kind", "user", "instance", "last_used_at", "revoked_at", "created_at")
    list_filter = ("kind", RevokedFilter)
    search_fields = ("prefix", "name", "user__username", "instance__name")
    list_select_related = ("user", "instance")
    raw_id_fields = ("user", "instance")
    fields = ("kind", "user", "instance", "name", "prefix", "last_used_at", "revoked_at", "created_at")
    actions = ("revoke",)

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenCreateForm
            kwargs["fields"] = ApiTokenCreateForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj=None) -> tuple:
        return self.fields if obj is not None else tuple(ApiTokenCreateForm.Meta.fields)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple:
        return self.fields if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # revoke instead: a deleted row would leave its cache entry valid until it expires

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if change:
            return  # nothing is editable after creation: revoke instead
        data = form.cleaned_data
        token, raw_token = api_token_create(
            kind=data["kind"], user=data["user"], instance=data["instance"], name=data["name"], actor=request.user
        )
        _adopt(obj, token)
        request._nija_raw_token = raw_token  # only for response_add, in this request

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue=None) -> HttpResponse:
        """Render the token in the answer to the POST itself (no redirect): the message is consumed in this
        request, so the raw token is never written to the message cookie or the session."""
        raw_token = getattr(request, "_nija_raw_token", None)
        if raw_token is None:
            return super().response_add(request, obj, post_url_continue)
        messages.warning(request, f"Copy this token now, it will not be shown again: {raw_token}")
        context = {
            **self.admin_site.each_context(request),
            "token": ApiToken.objects.select_related("user", "instance").get(pk=obj.pk),
            "opts": self.opts,
            "changelist_url": reverse("admin:accounts_apitoken_changelist"),
        }
        response = TemplateResponse(request, "admin/accounts/apitoken/token_created.html", context)
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
        return response

    def save_form(self, request: HttpRequest, form, change: bool):
        if change:
            return form.instance  # every field is read-only after creation
        return form.save(commit=False)

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            api_token_revoke(token=token, actor=request.user, reason="revoked in admin")
            revoked += 1
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)


# ------------------------------------------------------------------------------------------------
# Audit record: read-only
# ------------------------------------------------------------------------------------------------
@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_username", "action", "target_type", "target_id", "reason", "request_id")
    list_filter = ("action", "target_type")
    search_fields = ("actor_username", "action", "target_id", "reason", "request_id")
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
