"""The failed messages page (issue 19, item 6), for administrators: the dead letters of their
accounts with their last error, and forms (CSRF-protected) that requeue one or all of them, the
operation of `postventa messages requeue`. An operator is answered the console's 404, as for
anything not theirs to see."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from postventa.console.auth import SignedIn, form_field, signed_in
from postventa.console.context import ConsoleContext
from postventa.console.render import forbidden_page, not_found_page, page, see_other
from postventa.console.sessions import SESSION_COOKIE
from postventa.domain.parameters import parse_identifier
from postventa.services import console

FAILED_PAGE_SIZE = 50
MAX_PAGE_NUMBER = 100_000


def build_router(context: ConsoleContext) -> APIRouter:
    """GET /console/failed, POST /console/failed/requeue."""
    router = APIRouter(include_in_schema=False)

    async def administrator(request: Request) -> SignedIn | Response:
        user = await signed_in(context, request)
        if user is None:
            return see_other(f"/console/login?next={quote(request.url.path)}")
        if not console.may_requeue(user.user.role):
            return not_found_page(context, request, user)
        return user

    @router.get("/console/failed")
    async def failed(request: Request) -> Response:
        user = await administrator(request)
        if not isinstance(user, SignedIn):
            return user
        page_number = min(parse_identifier(request.query_params.get("page", "1")) or 1, MAX_PAGE_NUMBER)
        async with context.database.transaction() as connection:
            found = await console.failed_messages(
                connection,
                user.user.role,
                user.account_ids,
                limit=FAILED_PAGE_SIZE,
                offset=(page_number - 1) * FAILED_PAGE_SIZE,
            )
        requeued = request.query_params.get("requeued", "")
        return page(
            context,
            request,
            "failed.html",
            user=user,
            csrf=user.csrf,
            failed=found,
            account_names={account.id: account.name for account in found.accounts},
            page_number=page_number,
            pages=max(1, -(-found.total // FAILED_PAGE_SIZE)),
            requeued=int(requeued) if requeued.isdigit() and len(requeued) < 10 else None,
        )

    @router.post("/console/failed/requeue")
    async def requeue(request: Request) -> Response:
        """One failed message (the form's `message`) or, without it, all of the user's."""
        user = await administrator(request)
        if not isinstance(user, SignedIn):
            return user
        form = await request.form(max_files=0, max_fields=5)
        if not context.signer.csrf_holds(request.cookies.get(SESSION_COOKIE), form_field(form, "csrf")):
            return forbidden_page(context, request, user)
        raw_id = form_field(form, "message")
        message_id = parse_identifier(raw_id) if raw_id else None
        if raw_id and message_id is None:
            return not_found_page(context, request, user)
        async with context.database.transaction(write=True) as connection:
            count = await console.requeue_failed(
                connection, user.user.role, user.account_ids, context.clock(), message_id
            )
        if count:
            context.on_message_queued()
        return see_other(f"/console/failed?requeued={count}")

    return router
