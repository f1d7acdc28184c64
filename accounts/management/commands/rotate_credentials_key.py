"""Re-encrypt every broker credential under the newest key of CREDENTIALS_KEYS.

Batches by primary key, each in its own transaction with its rows locked (FOR UPDATE), reading and writing
the raw Fernet tokens (the plaintext never leaves `accounts.crypto`). Rows already under the newest key are
skipped, so the command is idempotent and can be re-run after an interruption: it simply resumes.
"""

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from accounts import crypto
from accounts.models import BrokerCredential
from accounts.services import audit_entry_create

ENCRYPTED_COLUMNS = ("api_key", "api_secret", "passphrase")


def _rotate_row(row: tuple) -> dict[str, str]:
    """The columns of one row that are not yet under the newest key, re-encrypted."""
    pk, *tokens = row
    changed = {}
    for column, token in zip(ENCRYPTED_COLUMNS, tokens, strict=True):
        if token is not None and not crypto.is_current(token):
            changed[column] = crypto.rotate(token, context=f"BrokerCredential #{pk}.{column}")
    return changed


def rotate_batch(*, after_pk: int, batch_size: int) -> tuple[int | None, int, int]:
    """Rotate one batch of rows with pk > after_pk: (last pk seen or None when done, rows seen, rows rewritten)."""
    table = connection.ops.quote_name(BrokerCredential._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in ("id", *ENCRYPTED_COLUMNS))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {table} WHERE id > %s ORDER BY id LIMIT %s FOR UPDATE",  # noqa: S608
            [after_pk, batch_size],
        )
        rows = cursor.fetchall()
        rewritten = 0
        for row in rows:
            changed = _rotate_row(row)
            if changed:
                assignments = ", ".join(f"{connection.ops.quote_name(column)} = %s" for column in changed)
                cursor.execute(f"UPDATE {table} SET {assignments} WHERE id = %s", [*changed.values(), row[0]])  # noqa: S608
                rewritten += 1
    return (rows[-1][0] if rows else None), len(rows), rewritten


class Command(BaseCommand):
    help = "Re-encrypt every broker credential under the newest key in CREDENTIALS_KEYS (idempotent, restartable)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: object, batch_size: int, **options: object) -> None:
        crypto.validate_keys()
        after_pk, total_rows, total_rewritten = 0, 0, 0
        while True:
            last_pk, seen, rewritten = rotate_batch(after_pk=after_pk, batch_size=batch_size)
            if last_pk is None:
                break
            total_rows += seen
            total_rewritten += rewritten
            after_pk = last_pk
        if total_rewritten:
            audit_entry_create(
                actor=None,
                action="broker_credential.rotate_key",
                target_type="accounts.brokercredential",
                after={"rows_rewritten": total_rewritten},
            )
        self.stdout.write(
            f"Rotated {total_rewritten} of {total_rows} broker credentials to the newest key "
            f"({total_rows - total_rewritten} already current)."
        )
