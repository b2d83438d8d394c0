"""Security headers on every response, including the ones the edge and Starlette's 500 handler send.

API responses carry customer data (buyers' names, messages, invoices): no browser or proxy may
cache them, sniff their type, frame them or send them on as a referrer. The headers are added only
when the response does not set its own, so a route that chooses a `Cache-Control` keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# /docs (Swagger UI) and /redoc are HTML pages FastAPI writes: they load their scripts, styles,
# fonts and icon from CDNs and bootstrap with an inline <script> (/redoc with an inline <style>,
# ReDoc with a blob: worker). 'none' would leave them blank, so they get a policy that allows
# exactly those origins. 'unsafe-inline' is acceptable there: the pages render no stored data, only
# our own OpenAPI document, fetched from this origin ('self'), which is also where "Try it out" calls.
DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "font-src https://fonts.gstatic.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly https://validator.swagger.io",
        "connect-src 'self'",
        "worker-src blob:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)
HSTS_MAX_AGE_SECONDS = 365 * 24 * 3600

_COMMON_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


def serves_https(public_url: str | None) -> bool:
    """Whether clients reach the service over TLS (the only case where HSTS means anything)."""
    return bool(public_url) and str(public_url).strip().lower().startswith("https://")


class SecurityHeadersMiddleware:
    """Adds the security headers a response lacks; `docs_paths` get the documentation pages' policy.

    `Strict-Transport-Security` is sent only when `strict_transport` is set (the public URL is
    https): over plain HTTP browsers ignore it, and a service behind a TLS-terminating proxy cannot
    tell from the request itself.
    """

    def __init__(
        self, app: ASGIApp, *, docs_paths: Iterable[str] = (), strict_transport: bool = False
    ) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)
        self.extra: tuple[tuple[bytes, bytes], ...] = (
            ((b"strict-transport-security", f"max-age={HSTS_MAX_AGE_SECONDS}".encode()),)
            if strict_transport
            else ()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = (
            DOCS_CONTENT_SECURITY_POLICY if scope["path"] in self.docs_paths else API_CONTENT_SECURITY_POLICY
        )
        wanted = (*_COMMON_HEADERS, (b"content-security-policy", policy.encode()), *self.extra)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in wanted if name not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SecuredFastAPI(FastAPI):
    """FastAPI with the security headers outside its whole middleware stack.

    Starlette puts its ServerErrorMiddleware (which sends the 500 of an unexpected exception)
    outside every middleware added with `add_middleware`; wrapping the built stack is the only
    place from which a 500, and the edge's own 413/414, also carry the headers.
    """

    def __init__(self, *, strict_transport: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.strict_transport = strict_transport

    def build_middleware_stack(self) -> ASGIApp:
        """The usual stack, wrapped in the security headers."""
        docs_paths = [
            path for path in (self.docs_url, self.redoc_url, self.swagger_ui_oauth2_redirect_url) if path
        ]
        return SecurityHeadersMiddleware(
            super().build_middleware_stack(), docs_paths=docs_paths, strict_transport=self.strict_transport
        )
