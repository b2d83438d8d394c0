"""HTML responses of the console, with the headers its pages need."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.requests import Request

from postventa.console.context import ConsoleContext

# The console's own policy: its scripts and styles from this origin only, forms posted only here.
CONSOLE_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
PAGE_HEADERS = {"content-security-policy": CONSOLE_CONTENT_SECURITY_POLICY, "cache-control": "no-store"}


def page(
    context: ConsoleContext, request: Request, template: str, *, status: int = 200, **values: Any
) -> HTMLResponse:
    """A template rendered as a page (or a fragment of one, for htmx) in the request's language."""
    templates = context.templates[context.language(request)]
    html = templates.get_template(template).render(path=request.url.path, **values)
    # Answers depend on the language cookie and Accept-Language: no shared cache may mix them.
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS | {"vary": "Cookie, Accept-Language"})


def see_other(location: str) -> RedirectResponse:
    """A redirect after a form (303: the browser follows it with a GET)."""
    return RedirectResponse(location, status_code=303, headers={"cache-control": "no-store"})


def not_found_page(context: ConsoleContext, request: Request, user: Any = None) -> HTMLResponse:
    """The console's 404: the same whether the thing does not exist or is another account's."""
    return _refusal_page(context, request, "not_found.html", 404, user)


def forbidden_page(context: ConsoleContext, request: Request, user: Any = None) -> HTMLResponse:
    """A form posted without its CSRF token (or with another's): refused, nothing changed."""
    return _refusal_page(context, request, "forbidden.html", 403, user)


def _refusal_page(
    context: ConsoleContext, request: Request, template: str, status: int, user: Any
) -> HTMLResponse:
    return page(
        context, request, template, status=status, user=user, csrf=user.csrf if user is not None else None
    )
