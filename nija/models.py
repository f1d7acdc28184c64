"""Abstract model bases shared by every app (no concrete models: nija/ owns no data)."""

from django.db import models


class TimeStampedModel(models.Model):
    """`created_at` / `updated_at` on every row, set by the database layer, never by hand."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
