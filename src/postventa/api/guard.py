"""Checks 1–4 for every public endpoint: key, account, association, rate limit (1 and 4, and 2–3 when an
account is given, for the reads of the key itself)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from postventa.api.context import Context
from postventa.api.ratelimit import RateLimitState
from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.parameters import ACCOUNT_ID, API_KEY, Parameters
from postventa.metrics import RATE_LIMIT_REFUSALS
from postventa.services.auth import authenticate, authorize_account
from postventa.store.accounts import ApiKeyGrant


async def authorize_request(
    request: Request,
    context: Context,
    parameters: Parameters,
    endpoint_class: str,
    connection: AsyncConnection | None = None,
) -> int:
    """The account the request acts on; refuses with the first failing check of 1–4.

    Reads the key in `connection` when given (the send's own transaction: one transaction per send),
    else in a transaction of its own. From check 1 on, the key's rate-limit headers go on the
    response, whatever it is (response_headers here, and api/errors.py for the refusals).
    """
    pepper = context.settings.api_key_pepper
    if connection is not None:
        grant = await authenticate(connection, parameters.text(API_KEY), pepper)
    else:
        async with context.database.transaction() as own_connection:
            grant = await authenticate(own_connection, parameters.text(API_KEY), pepper)
    try:
        account_id = authorize_account(grant, parameters.raw(ACCOUNT_ID))
    except PostventaError:
        # Checks 2 and 3 come before the count, but the key is known: say where it stands.
        request.state.response_headers = await _standing(context, grant, endpoint_class)
        raise
    await _count(request, context, grant, endpoint_class)
    return account_id


async def authorize_key(
    request: Request, context: Context, parameters: Parameters, endpoint_class: str
) -> ApiKeyGrant:
    """What the key opens, for a read of the key itself (GET /v2/accounts): checks 1 and 4.

    No account is needed; one that is given (Alephee's clients send `accountId` everywhere) must
    still pass checks 2 and 3, as on every other endpoint. The rate-limit headers go on the
    response as for `authorize_request`.
    """
    async with context.database.transaction() as connection:
        grant = await authenticate(connection, parameters.text(API_KEY), context.settings.api_key_pepper)
    if parameters.has(ACCOUNT_ID):
        try:
            authorize_account(grant, parameters.raw(ACCOUNT_ID))
        except PostventaError:
            request.state.response_headers = await _standing(context, grant, endpoint_class)
            raise
    await _count(request, context, grant, endpoint_class)
    return grant


async def _count(request: Request, context: Context, grant: ApiKeyGrant, endpoint_class: str) -> None:
    """Check 4: count the request against the key's limit; 429 when it is over."""
    state = await context.rate_limiter.hit(grant.prefix, endpoint_class, grant.rate_limits)
    request.state.rate_limit = state  # its headers go on the response, whatever it is
    if not state.allowed:
        RATE_LIMIT_REFUSALS.labels(endpoint_class).inc()
        # Check 4 refused (429): the request was not counted and does nothing else.
        raise PostventaError.of(
            RefusalKind.RATE_LIMITED,
            "rate_limited",
            f"Too many requests for this API key; retry in {state.retry_after_seconds} seconds.",
        )


async def check_key_before_body(
    request: Request, context: Context, parameters: Parameters, endpoint_class: str
) -> None:
    """Checks 1 and 4 before a large body is read, when the key came in the query or a header.

    An unknown key, or one over its limit, is refused without the body being read (the edge then
    closes the connection): a request that cannot succeed costs a small, fixed amount of memory
    (docs/decisions.md). The limit is only looked at here; the request is counted, after checks 2
    and 3, by `authorize_request` as always.
    """
    key = parameters.text(API_KEY)
    if key is None:
        return  # in the body: read it (bounded by the edge's large-body slots), then check it
    async with context.database.transaction() as connection:
        grant = await authenticate(connection, key, context.settings.api_key_pepper)
    state = await context.rate_limiter.peek(grant.prefix, endpoint_class, grant.rate_limits)
    if not state.allowed:
        request.state.rate_limit = state
        RATE_LIMIT_REFUSALS.labels(endpoint_class).inc()
        raise PostventaError.of(
            RefusalKind.RATE_LIMITED,
            "rate_limited",
            f"Too many requests for this API key; retry in {state.retry_after_seconds} seconds.",
        )


async def _standing(context: Context, grant: ApiKeyGrant, endpoint_class: str) -> dict[str, str]:
    try:
        state = await context.rate_limiter.peek(grant.prefix, endpoint_class, grant.rate_limits)
    except PostventaError:
        return {}  # the counters are unreachable: the refusal of check 2 or 3 stands, without headers
    return state.headers()


def response_headers(request: Request) -> dict[str, str]:
    """Headers gathered while handling the request (the rate-limit state)."""
    state: RateLimitState | None = getattr(request.state, "rate_limit", None)
    if state is not None:
        return state.headers()
    headers: dict[str, str] = getattr(request.state, "response_headers", None) or {}
    return headers


def raw_response_headers(request: Request) -> list[tuple[bytes, bytes]]:
    """`response_headers` as raw headers (the send's, on every accepted message)."""
    state: RateLimitState | None = getattr(request.state, "rate_limit", None)
    if state is not None:
        return state.raw_headers()
    return [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in response_headers(request).items()
    ]
