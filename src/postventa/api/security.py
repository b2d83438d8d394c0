"""Security headers on every response, including the ones the edge and Starlette's 500 handler send.

API responses carry customer data (buyers' names, messages, invoices): no browser or proxy may
cache them, sniff their type, frame them or send them on as a referrer. The headers are added only
when the response does not set its own, so a route that chooses a `Cache-Control` keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# /docs (Swagger UI, its files served from this origin: api/docs_pages.py) and /redoc (FastAPI's
# page, whose scripts, styles and fonts come from CDNs) bootstrap with an inline <script> (/redoc
# with an inline <style>, ReDoc with a blob: worker). 'none' would leave them blank, so they get a
# policy that allows exactly this origin and those. 'unsafe-inline' is acceptable there: the pages
# render no stored data, only our own OpenAPI document, fetched from this origin ('self'), which is
# also where "Try it out" calls.
DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
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


class SecurityHeaders:
    """The security headers for a request path; `docs_paths` get the documentation pages' policy.

    `Strict-Transport-Security` is sent only when `strict_transport` is set (the public URL is
    https): over plain HTTP browsers ignore it, and a service behind a TLS-terminating proxy cannot
    tell from the request itself. The edge middleware (edge.py) adds those a response lacks.
    """

    def __init__(self, *, docs_paths: Iterable[str] = (), strict_transport: bool = False) -> None:
        self.docs_paths = frozenset(docs_paths)
        extra: tuple[tuple[bytes, bytes], ...] = (
            ((b"strict-transport-security", f"max-age={HSTS_MAX_AGE_SECONDS}".encode()),)
            if strict_transport
            else ()
        )
        self._api = (
            *_COMMON_HEADERS,
            (b"content-security-policy", API_CONTENT_SECURITY_POLICY.encode()),
            *extra,
        )
        self._docs = (
            *_COMMON_HEADERS,
            (b"content-security-policy", DOCS_CONTENT_SECURITY_POLICY.encode()),
            *extra,
        )

    def for_path(self, path: str) -> tuple[tuple[bytes, bytes], ...]:
        """The headers a response to `path` should carry (names in lower case)."""
        return self._docs if path in self.docs_paths else self._api
