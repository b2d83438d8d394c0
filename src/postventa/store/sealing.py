"""Mercado Libre credentials encrypted at rest (Fernet: AES-128-CBC with HMAC-SHA256).

A database backup or a read-only SQL leak then holds no usable token. Keys come from
POSTVENTA_TOKEN_KEY (comma-separated, newest first, so a key can be rotated: new values are
sealed with the first, old ones still open with the others). Values written before encryption
existed carry no marker and are read as they are; the next token refresh seals them.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SEALED_PREFIX = "sealed:v1:"


class TokenKeyError(Exception):
    """The configured key is malformed, or a stored value was sealed with a key we do not have."""


class TokenCipher:
    """Seals and opens the credentials stored with an account's Mercado Libre link."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise TokenKeyError("no token key")
        try:
            self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        except (ValueError, UnicodeEncodeError) as error:
            raise TokenKeyError(
                "POSTVENTA_TOKEN_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated"
            ) from error

    def seal(self, plaintext: str) -> str:
        """The value as stored."""
        return SEALED_PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """The plaintext of a stored value."""
        if not stored.startswith(SEALED_PREFIX):
            return stored  # written before encryption at rest; sealed on the next write
        try:
            return self._fernet.decrypt(stored[len(SEALED_PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken as error:
            raise TokenKeyError(
                "a stored Mercado Libre credential was sealed with another key: set POSTVENTA_TOKEN_KEY "
                "to the key it was written with (old keys may follow the new one, comma-separated)"
            ) from error


def load_token_cipher(configured: str | None, key_file: Path) -> TokenCipher:
    """The cipher of the configured keys; without any, the key in `key_file` (created on first use)."""
    if configured:
        return TokenCipher([key.strip() for key in configured.split(",") if key.strip()])
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        # Created readable by its owner only, and never overwritten: losing it loses every link.
        try:
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(Fernet.generate_key().decode("ascii") + "\n")
    return TokenCipher([key_file.read_text().strip()])
