"""Mercado Libre credentials at rest: sealed, opened, rotated, and refused with the wrong key."""

from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet

from postventa.store.sealing import SEALED_PREFIX, TokenCipher, TokenKeyError, load_token_cipher

SECRET = "APP_USR-1234567890-refresh-token"


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_a_sealed_value_holds_no_plaintext_and_opens_back():
    cipher = TokenCipher([new_key()])
    sealed = cipher.seal(SECRET)
    assert sealed.startswith(SEALED_PREFIX)
    assert SECRET not in sealed
    assert cipher.open(sealed) == SECRET


def test_sealing_twice_gives_two_different_values():
    cipher = TokenCipher([new_key()])
    assert cipher.seal(SECRET) != cipher.seal(SECRET)


def test_a_value_written_before_encryption_reads_as_it_is():
    assert TokenCipher([new_key()]).open(SECRET) == SECRET


def test_rotation_seals_with_the_first_key_and_opens_with_any():
    old, new = new_key(), new_key()
    written_before = TokenCipher([old]).seal(SECRET)
    rotated = TokenCipher([new, old])
    assert rotated.open(written_before) == SECRET
    assert TokenCipher([new]).open(rotated.seal(SECRET)) == SECRET


def test_the_wrong_key_is_a_clear_error_not_garbage():
    sealed = TokenCipher([new_key()]).seal(SECRET)
    with pytest.raises(TokenKeyError, match="POSTVENTA_TOKEN_KEY"):
        TokenCipher([new_key()]).open(sealed)


@pytest.mark.parametrize("configured", ["not-a-key", "ñ" * 44, "c2hvcnQ="])
def test_a_malformed_key_is_refused(configured: str):
    with pytest.raises(TokenKeyError, match="Fernet"):
        load_token_cipher(configured, key_file=None)  # type: ignore[arg-type]


def test_configured_keys_are_comma_separated_newest_first(tmp_path):
    old, new = new_key(), new_key()
    cipher = load_token_cipher(f" {new} , {old} ", tmp_path / "unused.key")
    assert cipher.open(TokenCipher([old]).seal(SECRET)) == SECRET
    assert not (tmp_path / "unused.key").exists()


def test_without_a_configured_key_one_is_generated_once_readable_by_its_owner_only(tmp_path):
    key_file = tmp_path / "var" / "token.key"
    sealed = load_token_cipher(None, key_file).seal(SECRET)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_token_cipher(None, key_file).open(sealed) == SECRET  # the same key, reused
