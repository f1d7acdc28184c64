"""Reads of the append-only audit trail (accounts.AuditEntry) for `/api/audit`: filtered, newest first."""

from datetime import datetime

from django.db.models import QuerySet

from accounts.models import AuditEntry


def audit_entry_list(
    *, actor: str | None = None, action: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[AuditEntry]:
    """Entries newest first: the actor by username (an empty one: the system's own entries, emergency halts say),
    the action exactly, since inclusive, until exclusive (index on created_at)."""
    entries = AuditEntry.objects.all()
    if actor is not None:
        entries = entries.filter(actor_username=actor)
    if action is not None:
        entries = entries.filter(action=action)
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    if until is not None:
        entries = entries.filter(created_at__lt=until)
    return entries.order_by("-created_at", "-id")
