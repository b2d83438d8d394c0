"""HTML responses of the console, with the headers its pages need."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse, RedirectResponse

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


def page(context: ConsoleContext, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    """A template rendered as a page (or a fragment of one, for htmx)."""
    html = context.templates.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def see_other(location: str) -> RedirectResponse:
    """A redirect after a form (303: the browser follows it with a GET)."""
    return RedirectResponse(location, status_code=303, headers={"cache-control": "no-store"})


def not_found_page(context: ConsoleContext, csrf: str | None = None) -> HTMLResponse:
    """The console's 404: the same whether the thing does not exist or is another account's."""
    return page(context, "not_found.html", status=404, csrf=csrf)
