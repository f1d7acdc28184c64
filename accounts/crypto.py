"""Encryption at rest for broker credentials: a text field on cryptography's MultiFernet.

Keys come from `settings.CREDENTIALS_KEYS` (env var CREDENTIALS_KEYS, comma-separated Fernet keys): the first
encrypts, every key decrypts, so keys rotate by prepending a new one, running `rotate_credentials_key`, then
dropping the old one. The database column only ever holds Fernet tokens. No message raised from here ever
includes a key, a token or a plaintext.
"""

from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

KEY_HELP = (
    "Generate one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' "
    "and set CREDENTIALS_KEYS (comma-separated, newest first). See README 'Broker credentials: keys and rotation'."
)


class CredentialDecryptionError(Exception):
    """A stored credential could not be decrypted with any configured key (the message holds no secret)."""


def _parse_keys(keys: tuple[str, ...]) -> list[Fernet]:
    if not keys:
        raise ImproperlyConfigured(f"CREDENTIALS_KEYS is not set: broker credentials cannot be read. {KEY_HELP}")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.strip().encode()))
        except (ValueError, TypeError):
            # The key itself is never echoed: only its position in the list.
            raise ImproperlyConfigured(
                f"CREDENTIALS_KEYS entry #{position} is not a valid Fernet key (32 url-safe base64-encoded bytes). "
                f"{KEY_HELP}"
            ) from None
    return fernets


@lru_cache(maxsize=8)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    fernets = _parse_keys(keys)
    return MultiFernet(fernets), fernets[0]


def configured_keys() -> tuple[str, ...]:
    """The configured key list as a tuple (empty entries dropped)."""
    raw = getattr(settings, "CREDENTIALS_KEYS", None) or ()
    if isinstance(raw, str):
        raw = raw.split(",")
    return tuple(key.strip() for key in raw if key and key.strip())


def validate_keys() -> None:
    """Raise ImproperlyConfigured (with a message holding no key) unless the configured keys are usable."""
    _fernets(configured_keys())


def encrypt(plaintext: str) -> str:
    """A Fernet token of `plaintext` under the newest key."""
    multi, _ = _fernets(configured_keys())
    return multi.encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, context: str = "credential") -> str:
    """The plaintext of `token`, trying every configured key; CredentialDecryptionError if none fits."""
    multi, _ = _fernets(configured_keys())
    try:
        return multi.decrypt(token.encode()).decode()
    except (InvalidToken, TypeError, ValueError):
        raise CredentialDecryptionError(
            f"Cannot decrypt {context}: it was encrypted with a key that is not in CREDENTIALS_KEYS, "
            "or the stored value is corrupt."
        ) from None


def is_current(token: str) -> bool:
    """True when `token` is already encrypted under the newest key (rotation skips it)."""
    _, primary = _fernets(configured_keys())
    try:
        primary.decrypt(token.encode())
    except (InvalidToken, TypeError, ValueError):
        return False
    return True


def rotate(token: str, *, context: str = "credential") -> str:
    """`token` re-encrypted under the newest key (decrypted with whichever configured key fits)."""
    multi, _ = _fernets(configured_keys())
    try:
        return multi.rotate(token.encode()).decode()
    except (InvalidToken, TypeError, ValueError):
        raise CredentialDecryptionError(
            f"Cannot re-encrypt {context}: no key in CREDENTIALS_KEYS decrypts it."
        ) from None


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python code only ever sees the plaintext.

    None stays NULL; every string (the empty one included) is encrypted. Not usable in lookups: Fernet
    tokens are randomized, so equal plaintexts never compare equal in SQL.
    """

    description = "Text encrypted at rest with MultiFernet (CREDENTIALS_KEYS)"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        return decrypt(value, context=f"{self.model.__name__}.{self.name}")

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt(str(value))
