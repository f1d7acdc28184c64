"""Broker credentials at rest: ciphertext in the column, MultiFernet rotation, clear errors holding no secret."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from accounts.crypto import CredentialDecryptionError
from accounts.models import AuditEntry, BrokerCredential
from accounts.services import broker_credential_create, broker_credential_update_secrets
from tests.accounts.factories import BrokerCredentialFactory, UserFactory

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _raw_columns(pk: int) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key, api_secret, passphrase FROM accounts_brokercredential WHERE id = %s", [pk])
        return cursor.fetchone()


def test_the_column_holds_ciphertext_and_the_model_reads_plaintext():
    credential = broker_credential_create(
        user=UserFactory(),
        broker="kraken",
        label="main",
        api_key="AKIA-1234-WXYZ",
        api_secret="s3cr3t-value",
        passphrase="pass-phrase",
    )

    raw_key, raw_secret, raw_passphrase = _raw_columns(credential.pk)
    for raw, plain in [(raw_key, "AKIA-1234-WXYZ"), (raw_secret, "s3cr3t-value"), (raw_passphrase, "pass-phrase")]:
        assert plain not in raw
        assert raw.startswith("gAAAAA")  # a Fernet token
    reloaded = BrokerCredential.objects.get(pk=credential.pk)
    assert (reloaded.api_key, reloaded.api_secret, reloaded.passphrase) == (
        "AKIA-1234-WXYZ",
        "s3cr3t-value",
        "pass-phrase",
    )
    assert reloaded.api_key_last4 == "WXYZ"


def test_str_and_repr_show_only_the_last_four_characters():
    credential = BrokerCredentialFactory(api_key="key-0000-LAST", api_secret="super-secret-value")

    for text in (str(credential), repr(credential)):
        assert "LAST" in text
        assert "key-0000" not in text
        assert "super-secret-value" not in text


@pytest.mark.parametrize(
    ("api_key", "shown"),
    [("ABCDEFGH", ""), ("ABCDEFGHIJK", ""), ("ABCDEFGHWXYZ", "WXYZ"), ("K" * 40 + "TAIL", "TAIL")],
)
def test_last4_is_kept_only_for_keys_of_at_least_12_characters(api_key, shown):
    credential = broker_credential_create(
        user=UserFactory(), broker="kraken", label="main", api_key=api_key, api_secret="secret"
    )
    rotated = broker_credential_create(
        user=UserFactory(), broker="kraken", label="main", api_key="LONG-ENOUGH-KEY-0000", api_secret="secret"
    )
    broker_credential_update_secrets(credential=rotated, actor=None, api_key=api_key)

    for row in (credential, rotated):
        row.refresh_from_db()
        assert row.api_key_last4 == shown
        assert row.api_key == api_key
    audits = AuditEntry.objects.filter(target_id__in=[str(credential.pk), str(rotated.pk)]).order_by("pk")
    assert [entry.after["api_key_last4"] for entry in audits] == [shown, "0000", shown]


def test_a_missing_passphrase_stays_null():
    credential = BrokerCredentialFactory(passphrase=None)

    assert _raw_columns(credential.pk)[2] is None
    assert BrokerCredential.objects.get(pk=credential.pk).passphrase is None


def test_a_row_under_an_unknown_key_raises_a_clear_error_without_the_secret(settings):
    settings.CREDENTIALS_KEYS = [OLD_KEY]
    credential = BrokerCredentialFactory(api_secret="do-not-leak-me")
    raw_secret = _raw_columns(credential.pk)[1]
    settings.CREDENTIALS_KEYS = [NEW_KEY]

    with pytest.raises(CredentialDecryptionError) as excinfo:
        BrokerCredential.objects.get(pk=credential.pk)

    message = str(excinfo.value)
    assert "BrokerCredential.api_key" in message
    assert "CREDENTIALS_KEYS" in message
    for secret in ("do-not-leak-me", raw_secret, OLD_KEY, NEW_KEY):
        assert secret not in message
    assert excinfo.value.__cause__ is None  # the InvalidToken chain is dropped


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ([], "CREDENTIALS_KEYS is not set"),
        (["not-a-key"], "entry #1 is not a valid Fernet key"),
        ([NEW_KEY, "short"], "entry #2 is not a valid Fernet key"),
    ],
)
def test_start_up_stops_on_a_missing_or_malformed_key(settings, keys, expected):
    settings.CREDENTIALS_KEYS = keys

    with pytest.raises(ImproperlyConfigured, match=expected) as excinfo:
        apps.get_app_config("accounts").ready()

    for key in keys:
        assert key not in str(excinfo.value)


def test_rotation_re_encrypts_every_row_and_the_old_key_can_then_be_dropped(settings):
    settings.CREDENTIALS_KEYS = [OLD_KEY]
    credentials = [BrokerCredentialFactory(passphrase=f"phrase-{n}") for n in range(7)]
    plain = {c.pk: (c.api_key, c.api_secret, c.passphrase) for c in credentials}
    before = {c.pk: _raw_columns(c.pk) for c in credentials}

    settings.CREDENTIALS_KEYS = [NEW_KEY, OLD_KEY]
    call_command("rotate_credentials_key", "--batch-size", "3", stdout=(first := StringIO()))

    assert "Rotated 7 of 7" in first.getvalue()
    after = {c.pk: _raw_columns(c.pk) for c in credentials}
    assert all(set(after[pk]).isdisjoint(before[pk]) for pk in plain)
    settings.CREDENTIALS_KEYS = [NEW_KEY]
    for credential in BrokerCredential.objects.all():
        assert (credential.api_key, credential.api_secret, credential.passphrase) == plain[credential.pk]
    assert AuditEntry.objects.filter(action="broker_credential.rotate_key").count() == 1


def test_rotation_is_idempotent(settings):
    settings.CREDENTIALS_KEYS = [OLD_KEY]
    credentials = [BrokerCredentialFactory() for _ in range(3)]
    settings.CREDENTIALS_KEYS = [NEW_KEY, OLD_KEY]
    call_command("rotate_credentials_key", stdout=StringIO())
    rotated = {c.pk: _raw_columns(c.pk) for c in credentials}

    call_command("rotate_credentials_key", stdout=(second := StringIO()))

    assert "Rotated 0 of 3" in second.getvalue()
    assert {c.pk: _raw_columns(c.pk) for c in credentials} == rotated  # nothing rewritten


def test_rotation_resumes_after_an_interrupted_run(settings):
    """A run that stopped half-way leaves rows under both keys; the next run finishes the rest."""
    from accounts.management.commands.rotate_credentials_key import rotate_batch

    settings.CREDENTIALS_KEYS = [OLD_KEY]
    credentials = [BrokerCredentialFactory() for _ in range(4)]
    settings.CREDENTIALS_KEYS = [NEW_KEY, OLD_KEY]
    rotate_batch(after_pk=0, batch_size=2)  # then "crash"

    call_command("rotate_credentials_key", stdout=(rest := StringIO()))

    assert "Rotated 2 of 4" in rest.getvalue()
    settings.CREDENTIALS_KEYS = [NEW_KEY]
    assert sorted(c.api_secret for c in BrokerCredential.objects.all()) == sorted(c.api_secret for c in credentials)
