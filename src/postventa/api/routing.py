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

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send


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


class HotRoutes:
    """The busiest routes called straight from the edge, around FastAPI's middleware and router.

    Between the edge and an endpoint Starlette and FastAPI run two exception-handling layers, an
    exit-stack layer and a router that tries each route's pattern in turn; on the send path that
    was about a tenth of the CPU a request costs (docs/performance.md). A hot route is matched here
    with its own pattern, called the way `DirectRoute` calls it, and its exceptions go to the
    application's own exception handlers, so its responses are the ones the full stack would give.
    Everything else (and a hot path under a mounted root path) takes the full stack.

    A hot route must be the only route its method and path match (tests/integration/
    test_hot_routes.py checks that of every operation of the application).
    """

    def __init__(self, app: ASGIApp, application: FastAPI, hot: list[APIRoute]) -> None:
        for route in hot:
            if not isinstance(route, DirectRoute):
                raise TypeError(f"{route.path}: a hot route is a DirectRoute")
        self.app = app
        self.application = application
        self.hot = [(route, frozenset(route.methods or ())) for route in hot]
        self.handlers = application.exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            for route, methods in self.hot:
                if scope["method"] in methods and (found := route.path_regex.match(scope["path"])):
                    await self._call(route, found.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _call(
        self, route: APIRoute, path_parameters: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        # What Starlette's application and router would have put in the scope.
        scope["app"] = self.application
        scope["route"] = route
        scope["path_params"] = path_parameters
        scope["endpoint"] = route.endpoint
        request = Request(scope, receive)
        try:
            response: Response = await route.endpoint(request=request, **path_parameters)
        except Exception as error:
            handler = self._handler_for(error)
            if handler is None:
                raise
            answered = handler(request, error)
            response = await answered if inspect.isawaitable(answered) else answered
        await response(scope, receive, send)

    def _handler_for(self, error: Exception) -> Callable[[Request, Any], Any] | None:
        for kind in type(error).__mro__:
            if kind in self.handlers:
                return self.handlers[kind]
        return None
