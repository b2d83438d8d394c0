"""The console's inbox (issue 19, item 3), a message's attachment, and the language switch (item 7).
With htmx the inbox asks for itself again every few seconds (the `HX-Request` header): the answer is
then the part that changes, so new conversations and badges appear without a reload. The
conversation page is console/conversation.py."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from postventa.console.auth import SignedIn, signed_in
from postventa.console.context import ConsoleContext
from postventa.console.i18n import LANGUAGE_COOKIE, LANGUAGE_COOKIE_MAX_AGE_SECONDS, LANGUAGES
from postventa.console.render import not_found_page, page, see_other
from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.parameters import parse_identifier
from postventa.domain.sites import Site
from postventa.services import console
from postventa.store.console_inbox import InboxFilter

INBOX_PAGE_SIZE = 25
MAX_SEARCH_CHARACTERS = 100
MAX_RETURN_PATH_CHARACTERS = 500
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f]")


def _inbox_filter(request: Request) -> tuple[InboxFilter, int]:
    query = request.query_params
    site = Site.parse(query.get("site", ""))
    # Control characters match nothing stored, and a NUL would not even reach PostgreSQL.
    search = _CONTROL_CHARACTERS.sub("", query.get("q", "")).strip()[:MAX_SEARCH_CHARACTERS] or None
    page_number = parse_identifier(query.get("page", "1")) or 1
    where = InboxFilter(
        account_id=parse_identifier(query.get("account", "")),
        site_id=site.value if site is not None else None,
        waiting=query.get("waiting") == "1",
        failed=query.get("failed") == "1",
        search=search,
    )
    return where, min(page_number, 100_000)


def build_router(context: ConsoleContext) -> APIRouter:
    """/, /console/, an order's attachments and /console/language/{language}."""
    router = APIRouter(include_in_schema=False)

    async def user_or_redirect(request: Request) -> SignedIn | Response:
        user = await signed_in(context, request)
        if user is None:
            return see_other(f"/console/login?next={quote(request.url.path)}")
        return user

    @router.get("/")
    async def root() -> Response:
        return see_other("/console/")

    @router.get("/console")
    async def console_without_slash() -> Response:
        return see_other("/console/")

    @router.get("/console/")
    async def inbox(request: Request) -> Response:
        user = await user_or_redirect(request)
        if not isinstance(user, SignedIn):
            return user
        where, page_number = _inbox_filter(request)
        async with context.database.transaction() as connection:
            found = await console.inbox(
                connection,
                user.account_ids,
                where,
                limit=INBOX_PAGE_SIZE,
                offset=(page_number - 1) * INBOX_PAGE_SIZE,
            )
        template = "inbox_rows.html" if request.headers.get("hx-request") else "inbox.html"
        pages = max(1, -(-found.total // INBOX_PAGE_SIZE))
        return page(
            context,
            request,
            template,
            user=user,
            csrf=user.csrf,
            inbox=found,
            where=where,
            page_number=page_number,
            pages=pages,
            sites=[site.value for site in Site],
            account_names={account.id: account.name for account in found.accounts},
            query=request.url.query,
            refresh_seconds=context.settings.console_refresh_seconds,
        )

    @router.get("/console/orders/{orderId}/messages/{messageId}/attachment")
    async def attachment(orderId: str, messageId: str, request: Request) -> Response:
        user = await user_or_redirect(request)
        if not isinstance(user, SignedIn):
            return user
        order_id, message_id = parse_identifier(orderId), parse_identifier(messageId)
        if order_id is None or message_id is None:
            return not_found_page(context, request, user)
        try:
            async with context.database.transaction() as connection:
                info, content = await console.attachment(connection, user.account_ids, order_id, message_id)
        except PostventaError as error:
            if error.refusal.kind is RefusalKind.NOT_FOUND:
                return not_found_page(context, request, user)
            raise
        filename = quote(info.name)
        return Response(
            content,
            media_type="application/octet-stream",
            headers={"content-disposition": f"attachment; filename*=UTF-8''{filename}"},
        )

    @router.get("/console/language/{language}")
    async def switch_language(language: str, request: Request) -> Response:
        """Remember the language chosen in the page's header, and go back to the page."""
        back = _return_path(request.query_params.get("next", ""))
        response = see_other(back)
        if language in LANGUAGES:
            response.set_cookie(
                LANGUAGE_COOKIE,
                language,
                max_age=LANGUAGE_COOKIE_MAX_AGE_SECONDS,
                httponly=True,
                samesite="lax",
                secure=context.secure_cookies,
                path="/",
            )
        return response

    return router


def _return_path(raw: str) -> str:
    """A page of the console to go back to; anything else (another site, a scheme) is the inbox."""
    path = raw[:MAX_RETURN_PATH_CHARACTERS]
    if path.startswith("/console/") and "//" not in path and "\\" not in path:
        return path
    return "/console/"
