"""One exception root; error responses apart from failures to get a response at all.

`ApiError` and its subclasses are the server's answers: one class per documented status, each with
`.status`, the stable snake_case `.code` to switch on, the readable `.message` and the
`.request_id` to quote in a support request. `TransportError` is "no response" (refused or
dropped connection, timeout): whether the request was processed is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping


class PostventaError(Exception):
    """The root of every error the SDK raises."""


class ApiError(PostventaError):
    """The server answered with an error status (a status without its own class is raised as this)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.headers: dict[str, str] = dict(headers or {})


class BadRequest(ApiError):
    """400: a parameter is missing or invalid (also 413, 414 and 415: a request that cannot be read)."""


class Unauthorized(ApiError):
    """401: the API key is missing, unknown or revoked."""


class Forbidden(ApiError):
    """403: the account is not one the API key opens."""


class NotFound(ApiError):
    """404: the order or message does not exist in this account."""


class Conflict(ApiError):
    """409: the conversation's state refuses the message now (e.g. `awaiting_buyer_reply`)."""


class PreconditionFailed(ApiError):
    """412: the order does not allow the reason (site, logistic type, cancelled, no delivery window)."""


class UnprocessableEntity(ApiError):
    """422: the `Idempotency-Key` was already used with a different request (`idempotency_key_reused`)."""


class RateLimited(ApiError):
    """429: the API key's rate limit; `.retry_after` is the wait the server asked for, in seconds."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message, request_id=request_id, headers=headers)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the server failed; for a send without an Idempotency-Key, whether it was stored is unknown."""


class TransportError(PostventaError):
    """No response: the connection was refused or dropped, or timed out. The cause is chained."""


class UnexpectedResponse(PostventaError):
    """A response that is not the contract's (e.g. a 200 whose body is not the documented JSON)."""

    def __init__(self, status: int, message: str, *, request_id: str | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.request_id = request_id


ERROR_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    413: BadRequest,
    414: BadRequest,
    415: BadRequest,
    422: UnprocessableEntity,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    """The class raised for an error status: its own, ServerError for any 5xx, ApiError otherwise."""
    if status >= 500:
        return ServerError
    return ERROR_BY_STATUS.get(status, ApiError)


class WebhookVerificationError(PostventaError):
    """A webhook request that `verify_webhook` refuses: do not act on it (answer it with a 4xx).

    `.code` says why: `headers_missing`, `signature_mismatch`, `timestamp_invalid`,
    `timestamp_too_old`, `timestamp_too_new` or `body_invalid` (signed, but not an event).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
