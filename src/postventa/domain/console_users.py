"""What a console user may be: an email, a password long enough, and one of the roles (issue 19).

Pure checks that return the refusal the admin API, the CLI and the console show alike.
"""

from __future__ import annotations

import re

from postventa.domain.errors import Refusal, RefusalKind

OPERATOR = "operator"
ADMIN = "admin"
ROLES = (OPERATOR, ADMIN)
MAX_EMAIL_CHARACTERS = 254  # RFC 5321's longest path, console_users.email
MIN_PASSWORD_CHARACTERS = 10
MAX_PASSWORD_CHARACTERS = 1024  # Argon2 takes any length; this bounds the work one sign-in costs
# No spaces, control characters or lone surrogates (which no database keeps) in any part.
_EMAIL_PART = r"[^@\s\x00-\x1f\x7f\ud800-\udfff]+"
_EMAIL = re.compile(rf"{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}")


def normal_email(email: str) -> str:
    """The email as it is stored and looked up: trimmed, in lower case."""
    return email.strip().lower()


def email_refusal(email: str) -> Refusal | None:
    """Why `email` (already normalised) cannot be a user's email, or None."""
    if len(email) > MAX_EMAIL_CHARACTERS or not _EMAIL.fullmatch(email):
        return Refusal(
            RefusalKind.INVALID,
            "invalid_email",
            f"Email: an address of at most {MAX_EMAIL_CHARACTERS} characters.",
        )
    return None


def password_refusal(password: str) -> Refusal | None:
    """Why `password` cannot be a user's password, or None."""
    if not MIN_PASSWORD_CHARACTERS <= len(password) <= MAX_PASSWORD_CHARACTERS:
        return Refusal(
            RefusalKind.INVALID,
            "invalid_password",
            f"Password: from {MIN_PASSWORD_CHARACTERS} to {MAX_PASSWORD_CHARACTERS} characters.",
        )
    return None


def role_refusal(role: str) -> Refusal | None:
    """Why `role` is not a role, or None."""
    if role not in ROLES:
        return Refusal(RefusalKind.INVALID, "invalid_role", "Role: 'operator' or 'admin'.")
    return None
