"""The API's endpoints as plain Starlette routes, each with the OpenAPI operation that documents it.

These endpoints read their own parameters (api/params.py: query, JSON or form, any casing,
duplicates refused, errors in the contract's body), so FastAPI's dependency solving and response
validation would have nothing to do for them: a Starlette `Route` calls `endpoint(request)` and
hands what it raises to the application's exception handlers, the way the framework does for every
route. What FastAPI would have written into /docs from a decorator and a signature is kept beside
the route instead (`DocumentedRoute.operation`), and api/openapi.py merges it into the document.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[Response]]
_PATH_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class DocumentedRoute(Route):
    """A Starlette route for one method, with its OpenAPI operation (without the path parameters,
    which the path names: api/openapi.py writes them)."""

    def __init__(self, method: str, path: str, endpoint: Endpoint, operation: dict[str, Any]) -> None:
        super().__init__(path, endpoint, methods=[method], name=endpoint.__name__)
        # Starlette answers HEAD wherever it answers GET; this API answers the methods it documents
        # (a HEAD would spend a read of the rate limit on a body nobody receives), as FastAPI's do.
        if method != "HEAD" and self.methods is not None:
            self.methods.discard("HEAD")
        self.method = method.lower()
        self.operation = operation

    @property
    def path_parameters(self) -> list[str]:
        """The names of the path's parameters, in order (`/v2/orders/{orderId}` → `["orderId"]`)."""
        return _PATH_PARAMETER.findall(self.path)


class Routes:
    """A module's routes, declared with a decorator the way an APIRouter's are, in the order given
    (the first route whose path and method match takes the request)."""

    def __init__(self, *, tags: list[str]) -> None:
        self.tags = tags
        self.routes: list[DocumentedRoute] = []

    def get(self, path: str, **operation: Any) -> Callable[[Endpoint], Endpoint]:
        """Declare `endpoint` as GET `path` (see `route`)."""
        return self.route("GET", path, **operation)

    def post(self, path: str, **operation: Any) -> Callable[[Endpoint], Endpoint]:
        """Declare `endpoint` as POST `path` (see `route`)."""
        return self.route("POST", path, **operation)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        responses: dict[int | str, dict[str, Any]],
        description: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Callable[[Endpoint], Endpoint]:
        """Declare `endpoint` as `method path`, documented by `summary`, `description` (the
        endpoint's docstring when not given), its `responses`, and `extra`: the query parameters
        and request body it reads (api/openapi.py's READ_QUERY, SEND_REQUEST…)."""

        def declare(endpoint: Endpoint) -> Endpoint:
            operation: dict[str, Any] = {
                "tags": list(self.tags),
                "summary": summary,
                "description": inspect.cleandoc(description or endpoint.__doc__ or ""),
                "operationId": _operation_id(endpoint.__name__, path, method),
                "responses": {str(status): response for status, response in responses.items()},
                **(extra or {}),
            }
            self.routes.append(DocumentedRoute(method, path, endpoint, operation))
            return endpoint

        return declare


def _operation_id(name: str, path: str, method: str) -> str:
    """The id FastAPI would give the operation (`send_v2_orders__orderId__messages_post`), so a
    client generated from the document keeps its method names."""
    return re.sub(r"\W", "_", f"{name}{path}") + f"_{method.lower()}"
