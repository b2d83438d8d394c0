"""The send's `Idempotency-Key` header (draft-ietf-httpapi-idempotency-key-header) at the HTTP edge.

Reads the header, claims the key (or replays what it recorded), runs the send's checks 5–10, and
settles the key: a refusal is recorded, an unexpected failure lets the key go. The 200 is recorded
by the route itself, in the transaction that stores the message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import Request
from starlette.responses import Response

from postventa.api.context import Context
from postventa.api.errors import refusal_response
from postventa.api.guard import response_headers
from postventa.domain.errors import PostventaError, Refusal, invalid
from postventa.domain.parameters import API_KEY, Parameters
from postventa.services import idempotency
from postventa.services.auth import authenticate
from postventa.store.idempotency import KeyLock, StoredResponse

IDEMPOTENCY_KEY_HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_CHARACTERS = 255
RECORDED_HEADERS = ("content-type", "location", "x-message-ignored")
# Not a response to the request: the key is another request's now, or the conversation was busy.
_RELEASED_CODES = frozenset({"conversation_busy"})

SendChecks = Callable[[KeyLock | None], Awaitable[Response]]

log = structlog.get_logger("postventa.api")


def idempotency_key(request: Request) -> str | None:
    """The request's key, or None without the header; a malformed key is a 400."""
    values = set(request.headers.getlist(IDEMPOTENCY_KEY_HEADER))
    if not values:
        return None
    if len(values) > 1:
        raise _malformed("'Idempotency-Key' is given more than once with different values.")
    return parse_idempotency_key(values.pop())


def parse_idempotency_key(raw: str) -> str:
    """A structured-field string (`"abc"`, quotes stripped) or a bare token: 1–255 printable ASCII."""
    text = raw.strip(" \t")
    if text.startswith('"'):
        key = _unquote(text)
    elif all("!" <= character <= "~" and character != '"' for character in text):
        key = text
    else:
        raise _malformed("'Idempotency-Key' must be printable ASCII without spaces, or a quoted string.")
    if not 1 <= len(key) <= MAX_KEY_CHARACTERS:
        raise _malformed(f"'Idempotency-Key' must have 1 to {MAX_KEY_CHARACTERS} characters.")
    return key


def _unquote(text: str) -> str:
    characters: list[str] = []
    position = 1
    while position < len(text):
        character = text[position]
        if character == "\\" and position + 1 < len(text) and text[position + 1] in '"\\':
            characters.append(text[position + 1])
            position += 2
        elif character == '"' and position == len(text) - 1:
            return "".join(characters)
        elif " " <= character <= "~" and character not in '"\\':
            characters.append(character)
            position += 1
        else:
            break
    raise _malformed("'Idempotency-Key' is not a valid quoted string of printable ASCII.")


def _malformed(message: str) -> PostventaError:
    return invalid("invalid_idempotency_key", message)


def stored_response(response: Response) -> StoredResponse:
    """What is kept of a response to replay it: status, the headers describing it, the body."""
    headers = {name: response.headers[name] for name in RECORDED_HEADERS if name in response.headers}
    return StoredResponse(status=response.status_code, headers=headers, body=bytes(response.body))


async def send_once(
    request: Request,
    context: Context,
    parameters: Parameters,
    *,
    key: str,
    request_hash: str,
    send_checks: SendChecks,
) -> Response:
    """Claim the key and run the send's checks, or replay the response recorded for the key."""
    async with context.database.transaction(write=True) as connection:
        # Checks 1–4 passed; the key's scope is the API key, which the guard does not hand over.
        grant = await authenticate(connection, parameters.text(API_KEY), context.settings.api_key_pepper)
        claimed = await idempotency.claim_key(
            connection,
            api_key_id=grant.api_key_id,
            key=key,
            request_hash=request_hash,
            now=context.clock(),
            ttl_seconds=context.settings.idempotency_ttl_seconds,
        )
    if isinstance(claimed, StoredResponse):
        log.info("idempotent_replay", request_id=getattr(request.state, "request_id", "-"))
        headers = claimed.headers | response_headers(request) | {REPLAYED_HEADER: "true"}
        return Response(claimed.body, status_code=claimed.status, headers=headers)
    try:
        return await send_checks(claimed)
    except PostventaError as error:
        await _settle_refusal(context, claimed, error.refusal)
        raise
    except Exception:
        await _release(context, claimed)
        raise


async def _settle_refusal(context: Context, lock: KeyLock, refusal: Refusal) -> None:
    if refusal.code == idempotency.KEY_IN_USE:
        return  # the lock ran out and another request holds the key: nothing of it is ours
    if refusal.code in _RELEASED_CODES:
        await _release(context, lock)
        return
    async with context.database.transaction(write=True) as connection:
        await idempotency.record_refusal(connection, lock, stored_response(refusal_response(refusal)))


async def _release(context: Context, lock: KeyLock) -> None:
    try:
        async with context.database.transaction(write=True) as connection:
            await idempotency.release(connection, lock)
    except Exception as error:  # the failure being reported matters more; the lock runs out anyway
        log.warning("idempotency_release_failed", error_type=type(error).__name__)
