"""OAuth as Mercado Libre does it for an authorised seller: refresh tokens that rotate on use,
access tokens that expire (`AccessTokenTtlSeconds`), and an authorization the seller can revoke
and grant again."""

from __future__ import annotations

import time
from typing import Any

from postventa.emulator import ids
from postventa.emulator.errors import MeliError, generic_body, invalid_token
from postventa.emulator.models import AccessToken, Seller
from postventa.emulator.state import EmulatorState

_GRANT_MESSAGE = (
    "Error validating grant. Your authorization code or refresh token may be expired or it was already used"
)


def refresh_grant(state: EmulatorState, form: dict[str, str]) -> dict[str, Any]:
    """Answer `POST /oauth/token` with `grant_type=refresh_token`: new access and refresh tokens.

    The refresh token used stops working, so a client that keeps the old one sees `invalid_grant`.
    """
    grant_type = form.get("grant_type", "")
    if grant_type != "refresh_token":
        raise MeliError(
            400, generic_body(400, "unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")
        )
    client_id, secret, token = form.get("client_id"), form.get("client_secret"), form.get("refresh_token")
    if not client_id or not secret or not token:
        raise _invalid_grant("client_id, client_secret and refresh_token are required")
    application = state.applications.get(client_id)
    if application is None or application.client_secret != secret:
        raise _invalid_grant("invalid client_id or client_secret")
    seller_id = state.refresh_tokens.get(token)
    seller = state.sellers.get(seller_id) if seller_id is not None else None
    if seller is None or seller.client_id != client_id:
        raise _invalid_grant(_GRANT_MESSAGE)
    del state.refresh_tokens[token]
    return _issue(state, seller)


def seller_for_token(state: EmulatorState, authorization: str | None) -> Seller:
    """The seller of a `Bearer` token still valid; 401 otherwise."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise invalid_token()
    token = state.access_tokens.get(authorization[7:].strip())
    if token is None or token.expires_at <= time.monotonic():
        raise invalid_token()
    return state.sellers[token.seller_id]


def token_owner(state: EmulatorState, authorization: str | None) -> Seller | None:
    """The seller a bearer token was issued to, expired or not (its application's rate limit, the
    journal), or None when there is no such token."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    token = state.access_tokens.get(authorization[7:].strip())
    return state.sellers.get(token.seller_id) if token is not None else None


def revoke_seller(state: EmulatorState, seller: Seller) -> None:
    """The seller revoked the application (changed the password, removed the app): every refresh and
    access token of the seller stops working at once."""
    for token in [token for token, owner in state.refresh_tokens.items() if owner == seller.id]:
        del state.refresh_tokens[token]
    for token in [token for token, access in state.access_tokens.items() if access.seller_id == seller.id]:
        del state.access_tokens[token]


def grant_seller(state: EmulatorState, seller: Seller) -> str:
    """The seller authorized the application again: a new refresh token for it (the application's
    secret is unchanged)."""
    token = ids.refresh_token(seller.id)
    state.refresh_tokens[token] = seller.id
    return token


def _issue(state: EmulatorState, seller: Seller) -> dict[str, Any]:
    ttl = state.config.access_token_ttl_seconds
    access = ids.access_token(seller.client_id, seller.id)
    state.access_tokens[access] = AccessToken(access, seller.id, time.monotonic() + ttl)
    refresh = ids.refresh_token(seller.id)
    state.refresh_tokens[refresh] = seller.id
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": int(ttl),
        "scope": "offline_access read write",
        "user_id": seller.id,
        "refresh_token": refresh,
    }


def _invalid_grant(message: str) -> MeliError:
    return MeliError(400, generic_body(400, "invalid_grant", message))
