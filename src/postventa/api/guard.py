"""Checks 1–4 for every public endpoint: key, account, association, rate limit."""

from __future__ import annotations

from starlette.requests import Request

from postventa.api.context import Context
from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.parameters import ACCOUNT_ID, API_KEY, Parameters
from postventa.services.auth import authenticate, authorize_account


async def authorize_request(
    request: Request, context: Context, parameters: Parameters, endpoint_class: str
) -> int:
    """The account the request acts on; refuses with the first failing check of 1–4."""
    async with context.database.transaction() as connection:
        grant = await authenticate(connection, parameters.text(API_KEY), context.settings.api_key_pepper)
    try:
        account_id = authorize_account(grant, parameters.raw(ACCOUNT_ID))
    except PostventaError:
        # Checks 2 and 3 come before the count, but the key is known: say where it stands.
        request.state.response_headers = (
            await context.rate_limiter.peek(grant.api_key_id, endpoint_class)
        ).headers()
        raise
    state = await context.rate_limiter.hit(grant.api_key_id, endpoint_class)
    request.state.response_headers = state.headers()
    if not state.allowed:
        raise PostventaError.of(
            RefusalKind.RATE_LIMITED,
            "rate_limited",
            f"Too many requests for this API key; retry in {state.retry_after_seconds} seconds.",
        )
    return account_id


def response_headers(request: Request) -> dict[str, str]:
    """Headers gathered while handling the request (the rate-limit state)."""
    headers: dict[str, str] = getattr(request.state, "response_headers", None) or {}
    return headers
