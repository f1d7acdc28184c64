"""Writes of notification channels: create, update, delete and "send test", each audited; secrets are written
here and never read back out, except once: a signing secret the service generates is returned to its caller to
show one time.

A webhook's signing secret is a Standard Webhooks secret, `whsec_` then base64 of 24 to 64 random bytes. Its URL
is http(s) without credentials; a target given as a non-public IP literal (or localhost) is refused at once
unless ALERT_ALLOW_PRIVATE_TARGETS, and every name is checked again when a message is sent. An Apprise URL holds
its service's credentials, so it is encrypted like the secret and only its scheme and service are shown.
"""

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_entry_create
from monitoring.alerts import transport
from monitoring.alerts.errors import ChannelNotFound, InvalidChannel
from monitoring.alerts.models import ChannelKind, NotificationChannel
from monitoring.alerts.services.delivery import channel_send
from monitoring.alerts.services.evaluation import evaluation_lock

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
SECRET_BYTES = 32
MAX_URL_LENGTH = 2000
CHANNEL_FIELDS = ("name", "enabled", "url", "secret")


@dataclass(frozen=True)
class ChannelWrite:
    """A channel as written, and the signing secret to show once (only when the service generated it)."""

    channel: NotificationChannel
    revealed_secret: str | None = None


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_problem(secret: str) -> str | None:
    """Why `secret` is not a Standard Webhooks secret (None when it is one)."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        return f"A Standard Webhooks secret: {SECRET_PREFIX} then base64 of 24 to 64 bytes."
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return "The part after whsec_ is not base64."
    return None if 24 <= len(raw) <= 64 else "The decoded secret must be 24 to 64 bytes long."


def webhook_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.hostname:
        return f"An http or https URL with a host, at most {MAX_URL_LENGTH} characters."
    if any(character <= " " or character == "\x7f" for character in url):
        return "No spaces or control characters (percent-encode them): a request line cannot carry them."
    if parts.username is not None or parts.password is not None:
        return "Credentials in the URL would be shown to every reader: authenticate with the signature instead."
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        return "The port is out of range."
    return _literal_target_problem(parts.hostname)


def apprise_url_problem(url: str) -> str | None:
    if len(url) > MAX_URL_LENGTH:
        return f"At most {MAX_URL_LENGTH} characters."
    plugin = transport.apprise_plugin(url)
    if plugin is None:
        return "Apprise does not recognise this URL (tgram://, slack://, discord://, mailto://, json:// ...)."
    for host in transport.apprise_hosts(plugin):
        problem = _literal_target_problem(host)
        if problem:
            return problem
    return None


def _literal_target_problem(host: str) -> str | None:
    if not settings.ALERT_ALLOW_PRIVATE_TARGETS and transport.literal_address_refused(host):
        return f"{host} is not a public address (private targets are not allowed)."
    return None


def channel_values(channel: NotificationChannel) -> dict[str, Any]:
    """The channel as the audit record and the API show it: never a secret, never the Apprise URL."""
    return {
        "name": channel.name,
        "kind": channel.kind,
        "webhook_url": channel.webhook_url,
        "target_hint": channel.target_hint,
        "enabled": channel.enabled,
    }


def _apply_target(channel: NotificationChannel, url: str) -> None:
    problem = webhook_url_problem(url) if channel.kind == ChannelKind.WEBHOOK else apprise_url_problem(url)
    if problem:
        raise InvalidChannel(fields={"url": [problem]})
    if channel.kind == ChannelKind.WEBHOOK:
        channel.webhook_url = url
    else:
        channel.apprise_url, channel.target_hint = url, transport.apprise_target_hint(url)


def _apply_secret(channel: NotificationChannel, secret: str | None) -> str | None:
    """Set the signing secret (generated when None); returns it when generated, to show once."""
    if channel.kind != ChannelKind.WEBHOOK:
        raise InvalidChannel(fields={"secret": ["Only a webhook has a signing secret."]})
    generated = secret is None
    secret = secret_generate() if generated else secret
    problem = secret_problem(secret)
    if problem:
        raise InvalidChannel(fields={"secret": [problem]})
    channel.secret = secret
    return secret if generated else None


def _save(channel: NotificationChannel) -> None:
    try:
        with transaction.atomic():
            channel.save()
    except IntegrityError:
        raise InvalidChannel(fields={"name": ["Another channel has this name."]}) from None


@transaction.atomic
def alert_channel_create(
    *,
    actor: User | None,
    name: str,
    kind: str,
    url: str,
    secret: str | None = None,
    enabled: bool = True,
    reason: str = "",
) -> ChannelWrite:
    """A new channel, audited (without its secrets). A webhook without a secret gets a generated one, returned
    once in `revealed_secret`. Raises InvalidChannel and writes nothing when the target is not acceptable."""
    if kind not in ChannelKind.values:
        raise InvalidChannel(fields={"kind": [f"One of: {', '.join(ChannelKind.values)}."]})
    channel = NotificationChannel(name=name, kind=kind, enabled=enabled)
    _apply_target(channel, url)
    revealed = _apply_secret(channel, secret) if kind == ChannelKind.WEBHOOK or secret is not None else None
    _save(channel)
    after = channel_values(channel) | ({"secret": "set"} if kind == ChannelKind.WEBHOOK else {})
    audit_entry_create(actor=actor, action="alert_channel.create", target=channel, after=after, reason=reason)
    return ChannelWrite(channel, revealed)


@transaction.atomic
def alert_channel_update(
    *, channel_id: int, actor: User | None, rotate_secret: bool = False, reason: str = "", **changes: Any
) -> ChannelWrite:
    """Change a channel's name, enabled flag, target (`url`) or signing secret (`secret`, or `rotate_secret` for a
    generated one, returned once). Audited: secrets and Apprise URLs only as "changed"."""
    channel = NotificationChannel.objects.select_for_update().filter(pk=channel_id).first()
    if channel is None:
        raise ChannelNotFound()
    unknown = sorted(set(changes) - set(CHANNEL_FIELDS))
    if unknown:
        raise InvalidChannel(fields={name: ["Not editable."] for name in unknown})
    before = channel_values(channel)
    secret_changes: dict[str, str] = {}
    for field in ("name", "enabled"):
        if field in changes:
            setattr(channel, field, changes[field])
    if "url" in changes:
        _apply_target(channel, changes["url"])
        if channel.kind == ChannelKind.APPRISE:
            secret_changes["apprise_url"] = "changed"
    revealed = None
    if rotate_secret or "secret" in changes:
        revealed = _apply_secret(channel, None if rotate_secret else changes["secret"])
        secret_changes["secret"] = "changed"  # noqa: S105 - a marker, not a secret
    _save(channel)
    after = channel_values(channel)
    changed = [field for field in after if before[field] != after[field]]
    if changed or secret_changes:
        audit_entry_create(
            actor=actor,
            action="alert_channel.update",
            target=channel,
            before={field: before[field] for field in changed},
            after={field: after[field] for field in changed} | secret_changes,
            reason=reason,
        )
    return ChannelWrite(channel, revealed)


@transaction.atomic
def alert_channel_delete(*, channel_id: int, actor: User | None, reason: str = "") -> None:
    """Delete a channel, audited; rules stop using it, and its deliveries keep its name. Waits for a running
    evaluation, which may be creating deliveries to it."""
    evaluation_lock(wait=True)
    channel = NotificationChannel.objects.select_for_update().filter(pk=channel_id).first()
    if channel is None:
        raise ChannelNotFound()
    audit_entry_create(
        actor=actor,
        action="alert_channel.delete",
        target_type="monitoring.notificationchannel",
        target_id=str(channel.pk),
        before=channel_values(channel),
        reason=reason,
    )
    channel.delete()


def alert_channel_test(*, channel_id: int, actor: User | None) -> transport.SendResult:
    """Send one test message now (synchronously, within the delivery timeout) and audit its outcome. Works on a
    disabled channel too: testing before enabling is the point."""
    channel = NotificationChannel.objects.filter(pk=channel_id).first()
    if channel is None:
        raise ChannelNotFound()
    now = timezone.now()
    message_id = f"nija_test_{channel.pk}_{int(now.timestamp() * 1000)}"
    payload = {
        "type": "alert.test",
        "timestamp": now.isoformat(),
        "data": {"channel": channel.name, "message": "Test notification from the NIJA control plane."},
    }
    url = channel.webhook_url if channel.kind == ChannelKind.WEBHOOK else channel.apprise_url
    result = channel_send(
        kind=channel.kind, url=url or "", secret=channel.secret, message_id=message_id, payload=payload, now=now
    )
    audit_entry_create(
        actor=actor,
        action="alert_channel.test",
        target=channel,
        after={"outcome": result.outcome, "response_code": result.status_code, "error": result.error},
    )
    return result
