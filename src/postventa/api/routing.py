"""Routes whose endpoint FastAPI calls straight, with the Request and the path parameters as text.

The API's endpoints read their own parameters (api/params.py: query, JSON or form, any casing,
duplicates refused, errors in the contract's body), so FastAPI's dependency solving has nothing
to do for them but still costs every request its machinery: about a tenth of a send
(docs/performance.md). A `DirectRoute` keeps everything else of an APIRoute — the OpenAPI
operation written from the decorator and the signature, the matching, the exception handlers —
and calls `endpoint(request=..., **path_parameters)` itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute


class DirectRoute(APIRoute):
    """An APIRoute for `async def endpoint(<path parameters: str>, request: Request) -> Response`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        _check_signature(endpoint, self.path)

        async def handle(request: Request) -> Response:
            response: Response = await endpoint(request=request, **request.path_params)
            return response

        return handle


def _check_signature(endpoint: Callable[..., Any], path: str) -> None:
    """Fail at start-up, not on a request, if an endpoint wants more than FastAPI would give here."""
    parameters = inspect.signature(endpoint).parameters
    expected = {name for name in parameters if name != "request"}
    in_path = {part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")}
    if "request" not in parameters or expected != in_path or not inspect.iscoroutinefunction(endpoint):
        raise TypeError(
            f"{endpoint.__name__} ({path}): a DirectRoute endpoint is async and takes exactly the "
            "path parameters and `request`"
        )
