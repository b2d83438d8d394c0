"""The conversation page (issue 19, items 4 and 5): the messages, the order's facts, and the form
that sends a message through the API's own service.

The form's reasons are `/messages/options`' answer (services/reading.py's `send_options`: the same
rule the send applies), with Mercado Libre's caps when the next message would open the
conversation. The send is the API's (`send_message` in a write transaction, `CapsNeeded` answered
by asking Mercado Libre outside it and deciding again), and the worker is woken after the commit
as the API wakes it. A form posted twice stores one message (services/console.py's `send`), and
the page's script disables the button once the form is sent.

htmx asks for the messages again every few seconds. While the operator has written nothing, that
request also says which reasons the form shows, and a changed set is swapped in (a buyer's reply
opens them again); once they write, the form is left as it is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile

from postventa.console.auth import SignedIn, form_field, signed_in
from postventa.console.context import ConsoleContext
from postventa.console.i18n import translations
from postventa.console.labels import refusal_text
from postventa.console.render import forbidden_page, not_found_page, page, see_other
from postventa.console.sessions import SESSION_COOKIE
from postventa.domain.conversation import PastMessage
from postventa.domain.errors import PostventaError, Refusal, RefusalKind
from postventa.domain.guide import GuideCaps, opens_conversation
from postventa.domain.parameters import FILE, MESSAGE, MESSAGE_OPTIONS, Parameters, parse_identifier
from postventa.domain.send_request import UploadedFile
from postventa.domain.text import MAX_TEXT_CHARACTERS
from postventa.services import console, reading
from postventa.services.messaging import CapsLookup

MAX_FORM_FIELDS = 10
MAX_FORM_FIELD_BYTES = 64 * 1024  # the text is at most 350 characters; the rest are tokens


@dataclass(frozen=True)
class ComposeForm:
    """What the form shows besides the reasons: the operator's choice and text (kept after a
    refusal) and the refusal, in the operator's language."""

    reason: int | None = None
    text: str = ""
    error: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class ConversationView:
    """What the page shows."""

    conversation: reading.Conversation
    options: reading.SendOptions | None


def options_signature(options: reading.SendOptions) -> str:
    """What the form's reasons say, in a word: a poll swaps them in only when this changes."""
    return ",".join(
        f"{option.reason.value}:{option.refusal.code if option.refusal else 'ok'}"
        for option in options.options
    )


async def _caps(context: ConsoleContext, found: reading.Conversation) -> GuideCaps | None:
    """Mercado Libre's caps for the options, as `/messages/options` has them, asked only when the
    next message would open the conversation (they decide nothing otherwise)."""
    history = [PastMessage(message.direction) for message in found.messages]
    if not opens_conversation(history, has_attachment=False):
        return None
    order = found.order
    answer = context.guide.cached(order.account_id, order)
    if answer is None:
        answer = await context.guide.refresh(
            context.database, context.meli, order.account_id, order.id, context.clock()
        )
    return answer.caps


async def load_view(
    context: ConsoleContext, user: SignedIn, order_id: int, *, with_options: bool
) -> ConversationView:
    """The conversation (opened: marked read) and, when asked, what each reason would get now."""
    now = context.clock()
    async with context.database.transaction(write=True) as connection:
        found = await console.open_conversation(connection, user.account_ids, order_id, now)
    if not with_options:
        return ConversationView(found, None)
    caps = await _caps(context, found)
    async with context.database.transaction() as connection:
        options = await console.send_options(connection, user.account_ids, order_id, now, caps)
    return ConversationView(found, options)


def _values(
    context: ConsoleContext, request: Request, user: SignedIn, view: ConversationView, form: ComposeForm
) -> dict[str, Any]:
    order = view.conversation.order
    language = context.language(request)
    catalog = translations(language)
    why = {}
    if view.options is not None:
        why = {
            option.reason.value: refusal_text(option.refusal, language, catalog)
            for option in view.options.options
            if option.refusal is not None
        }
    return {
        "user": user,
        "csrf": user.csrf,
        "conversation": view.conversation,
        "order": order,
        "site_id": order.data.site.value if order.data.site else None,
        "refresh_seconds": context.settings.console_refresh_seconds,
        "options": view.options,
        "why": why,
        "signature": options_signature(view.options) if view.options is not None else "",
        "seen": len(view.conversation.messages),
        "version": _version(view, language),
        "form": form,
        "max_characters": MAX_TEXT_CHARACTERS,
    }


def build_router(context: ConsoleContext) -> APIRouter:
    """GET /console/orders/{orderId} and POST /console/orders/{orderId}/messages."""
    router = APIRouter(include_in_schema=False)

    async def _view_or_none(user: SignedIn, order_id: int, *, with_options: bool) -> ConversationView | None:
        """The conversation as shown, or None when the user's accounts have no such order."""
        try:
            return await load_view(context, user, order_id, with_options=with_options)
        except PostventaError as error:
            if error.refusal.kind is RefusalKind.NOT_FOUND:
                return None
            raise

    async def conversation_page(
        request: Request, user: SignedIn, order_id: int, form: ComposeForm, status: int = 200
    ) -> Response:
        view = await _view_or_none(user, order_id, with_options=True)
        if view is None:
            return not_found_page(context, request, user)
        values = _values(context, request, user, view, form)
        return page(context, request, "conversation.html", status=status, **values)

    @router.get("/console/orders/{orderId}")
    async def conversation(orderId: str, request: Request) -> Response:
        user = await signed_in(context, request)
        if user is None:
            return see_other(f"/console/login?next={quote(request.url.path)}")
        order_id = parse_identifier(orderId)
        if order_id is None:
            return not_found_page(context, request, user)
        if not request.headers.get("hx-request"):
            return await conversation_page(request, user, order_id, ComposeForm())
        return await _poll(request, user, order_id)

    async def _poll(request: Request, user: SignedIn, order_id: int) -> Response:
        """The messages again, and the form's reasons when the operator has written nothing and
        they changed."""
        query = request.query_params
        idle = query.get("idle") == "1"
        view = await _view_or_none(user, order_id, with_options=idle)
        if view is None:
            return not_found_page(context, request, user)
        values = _values(
            context, request, user, view, ComposeForm(reason=parse_identifier(query.get("reason", "")))
        )
        values["swap_reasons"] = view.options is not None and values["signature"] != query.get("shown")
        if not values["swap_reasons"] and query.get("version") == values["version"]:
            # Nothing the page shows changed: htmx swaps nothing on a 204, so a link the operator is
            # about to click is not replaced under the pointer every few seconds.
            return Response(status_code=204)
        return page(context, request, "conversation_messages.html", **values)

    @router.post("/console/orders/{orderId}/messages")
    async def send(orderId: str, request: Request) -> Response:
        user = await signed_in(context, request)
        order_id = parse_identifier(orderId)
        if user is None:
            return see_other(f"/console/login?next=/console/orders/{order_id or ''}")
        if order_id is None:
            return not_found_page(context, request, user)
        async with request.form(
            max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_FIELD_BYTES
        ) as form:
            if not context.signer.csrf_holds(request.cookies.get(SESSION_COOKIE), form_field(form, "csrf")):
                return forbidden_page(context, request, user)
            parameters = await _parameters(form)
        seen = _seen(form_field(form, "seen"))
        typed = ComposeForm(
            reason=parse_identifier(form_field(form, "reason")),
            text=form_field(form, "message", MAX_FORM_FIELD_BYTES),
        )
        try:
            sent = await _send(context, user, order_id, parameters, seen)
        except PostventaError as error:
            if error.refusal.kind is RefusalKind.NOT_FOUND:
                return not_found_page(context, request, user)
            refused = _refused(context, request, typed, error.refusal)
            return await conversation_page(request, user, order_id, refused, status=422)
        if not sent.repeated:
            context.on_message_queued()
        return see_other(f"/console/orders/{order_id}#message-{sent.message_id}")

    return router


def _version(view: ConversationView, language: str) -> str:
    """A short digest of what the messages' part of the page shows, in the language it shows it in."""
    shown = repr((language, view.conversation.order, view.conversation.messages))
    return hashlib.blake2b(shown.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def _seen(raw: str) -> int | None:
    """The form's count of the conversation's messages when it was shown; None when absent."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def _refused(context: ConsoleContext, request: Request, typed: ComposeForm, refusal: Refusal) -> ComposeForm:
    language = context.language(request)
    text = refusal_text(refusal, language, translations(language))
    return ComposeForm(reason=typed.reason, text=typed.text, error=text, error_code=refusal.code)


async def _parameters(form: FormData) -> Parameters:
    """The form as the send's parameters: the reason, the text and the file, when one was chosen."""
    pairs: list[tuple[str, object]] = [
        (MESSAGE_OPTIONS, form_field(form, "reason")),
        (MESSAGE, form_field(form, "message", MAX_FORM_FIELD_BYTES)),
    ]
    upload = form.get("attachment")
    if isinstance(upload, UploadFile) and upload.filename:  # a browser sends an empty part when none
        pairs.append((FILE, UploadedFile(upload.filename, await upload.read())))
    return Parameters.collect([pairs])


async def _send(
    context: ConsoleContext, user: SignedIn, order_id: int, parameters: Parameters, seen: int | None
) -> console.ConsoleSend:
    """The API's send, with Mercado Libre's caps as the API's send has them (`GuideCapsCache.deciding`)."""
    decide = partial(_store, context, user, order_id, parameters, seen)
    return await context.guide.deciding(context.database, context.meli, context.clock, decide)


async def _store(
    context: ConsoleContext,
    user: SignedIn,
    order_id: int,
    parameters: Parameters,
    seen: int | None,
    caps: CapsLookup,
) -> console.ConsoleSend:
    async with context.database.transaction(write=True) as connection:
        return await console.send(
            connection,
            user.account_ids,
            order_id,
            parameters,
            seen=seen,
            max_attachment_bytes=context.settings.max_attachment_bytes,
            now=context.clock(),
            caps=caps,
        )
