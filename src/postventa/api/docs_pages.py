"""/docs: Swagger UI with its files served by the application from the pinned `swagger-ui-bundle`
package, so the API's documentation works with no internet (FastAPI's own page loads them from a
CDN and is blank offline)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
SWAGGER_UI_FILES_URL = "/docs/static"
# The pages that get the documentation's content security policy (api/security.py).
DOCS_PATHS = (DOCS_URL, OAUTH2_REDIRECT_URL)


def install_docs(app: FastAPI) -> None:
    """Serve /docs, its OAuth2 redirect page and Swagger UI's files (the app is built with
    `docs_url=None`, so FastAPI adds none of its own)."""
    openapi_url = app.openapi_url or "/openapi.json"

    async def swagger_ui(_request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{SWAGGER_UI_FILES_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI_FILES_URL}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_UI_FILES_URL}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def oauth2_redirect(_request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.mount(SWAGGER_UI_FILES_URL, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
