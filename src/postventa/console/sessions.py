"""Signed session cookies and CSRF tokens for the console.

A session cookie reads "<user id>.<expiry epoch seconds>.<signature>". The signature covers the
user's current password hash, so a changed password (or a deleted user) ends every session at
once. CSRF tokens are bound to the session (or, on the sign-in form, to a random cookie of its
own) and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "pv_session"
SIGNIN_COOKIE = "pv_signin"  # the sign-in form's own CSRF nonce, before there is a session


@dataclass(frozen=True)
class SessionClaim:
    """What a session cookie says, before the user it names is checked."""

    user_id: int
    expires_at: int  # epoch seconds
    signature: str


class Signer:
    """Signs and checks the console's cookies and tokens with one secret key."""

    def __init__(self, secret: str | None) -> None:
        self._key = secret.encode() if secret else secrets.token_bytes(32)

    def _mac(self, *parts: object) -> str:
        message = "\x1f".join(map(str, parts)).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def session_cookie(self, user_id: int, expires_at: int, password_hash: str) -> str:
        """A cookie value for the user until `expires_at` (epoch seconds)."""
        return f"{user_id}.{expires_at}.{self._mac('session', user_id, expires_at, password_hash)}"

    @staticmethod
    def read_claim(cookie: str | None, now_epoch: float) -> SessionClaim | None:
        """The claim of a well-formed cookie that has not expired, or None."""
        user, _, rest = (cookie or "").partition(".")
        expires, _, signature = rest.partition(".")
        if not (user.isdigit() and expires.isdigit() and len(user) < 19 and len(expires) < 12 and signature):
            return None
        if int(expires) <= now_epoch:
            return None
        return SessionClaim(int(user), int(expires), signature)

    def claim_holds(self, claim: SessionClaim, password_hash: str) -> bool:
        """Whether the claim was signed here for the user's current password."""
        expected = self._mac("session", claim.user_id, claim.expires_at, password_hash)
        return hmac.compare_digest(expected, claim.signature)

    def csrf_token(self, bound_to: str) -> str:
        """The CSRF token of forms shown to the holder of `bound_to` (a session cookie or a nonce)."""
        return self._mac("csrf", bound_to)

    def csrf_holds(self, bound_to: str | None, token: str | None) -> bool:
        """Whether a posted token is the one of `bound_to`."""
        if not bound_to or not token:
            return False
        return hmac.compare_digest(self.csrf_token(bound_to), token)


def new_nonce() -> str:
    """A random value for the sign-in form's cookie."""
    return secrets.token_urlsafe(24)
