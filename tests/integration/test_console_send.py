"""The console's compose, failed-messages page and languages over in-process HTTP on both databases
(issue 19, items 5-7): the reasons are `/messages/options`' answer, a send is the API's (the same
message, the same refusals, shown inline in the operator's language), a form posted twice or
without its CSRF token stores nothing more, an administrator requeues failed messages of their
accounts only, and pages speak Spanish, Portuguese or English."""

from __future__ import annotations

import re

from markupsafe import escape
from sqlalchemy import select, update

from postventa.domain.parameters import Parameters
from postventa.services import messaging
from postventa.store.tables import messages
from tests.factories import buyer_replies, make_order, make_tenant, now
from tests.integration.test_console_http import console_client, csrf_of, make_user, sign_in

__all__ = ["console_client"]  # the fixture, shared with the sessions tests

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def form_of(page: str) -> dict[str, str]:
    """The compose form's hidden fields, as a browser would post them."""
    seen = re.search(r'name="seen" value="(\d+)"', page)
    assert seen, page
    return {"csrf": csrf_of(page), "seen": seen.group(1)}


async def stored(database, order_id: int) -> list[tuple[str, str, str]]:
    async with database.transaction() as connection:
        rows = await connection.execute(
            select(messages.c.direction, messages.c.text, messages.c.status)
            .where(messages.c.order_id == order_id)
            .order_by(messages.c.id)
        )
        return [tuple(row) for row in rows]


async def signed_in_operator(client, database, *, role: str = "operator"):
    tenant = await make_tenant(database)
    order = await make_order(database, tenant, Buyer={"Nickname": "COMPRADOR"})
    await sign_in(client, await make_user(database, tenant.account_id, role=role))
    return tenant, order


async def test_the_reasons_are_the_options_of_the_api_with_the_labels_of_the_issue(console_client, database):
    tenant, order = await signed_in_operator(console_client, database)

    page = (await console_client.get(f"/console/orders/{order}")).text
    api = await console_client.get(f"/v2/orders/{order}/messages/options", params=tenant.credentials())

    assert 'for="compose-reason">Reason<' in page
    assert 'for="compose-message">Message<' in page
    assert 'for="compose-attachment">Attachment<' in page
    assert ">Send</button>" in page
    options = {
        int(value): attributes for value, attributes in re.findall(r'<option value="(\d)"([^>]*)>', page)
    }
    assert sorted(options) == [1, 2, 3, 4, 5]
    results = api.json()["Results"]
    assert {result["Available"] for result in results} == {True, False}  # both kinds are checked
    for result in results:
        disabled = "disabled" in options[result["Reason"]["Key"]]
        assert disabled is not result["Available"], result
        if not result["Available"]:
            assert str(escape(result["Message"])) in page  # why, in English the domain's own words
        if result["Template"]:
            assert str(escape(result["Template"])) in page  # the template's text is shown


async def test_a_send_queues_the_apis_message_and_the_same_form_posted_again_stores_nothing(
    console_client, database
):
    tenant, order = await signed_in_operator(console_client, database)
    form = form_of((await console_client.get(f"/console/orders/{order}")).text)
    fields = form | {"reason": "4", "message": "Hola, ¿te llegó bien?"}

    first = await console_client.post(f"/console/orders/{order}/messages", data=fields, files={})
    again = await console_client.post(f"/console/orders/{order}/messages", data=fields, files={})

    assert first.status_code == again.status_code == 303, first.text
    assert first.headers["location"] == again.headers["location"]
    assert await stored(database, order) == [("outbound", "Hola, ¿te llegó bien?", "queued")]
    api = await console_client.get(f"/v2/orders/{order}/messages", params=tenant.credentials())
    assert [message["Text"] for message in api.json()["Results"]] == ["Hola, ¿te llegó bien?"]


async def test_a_refusal_is_shown_inline_in_the_operators_language_and_nothing_is_stored(
    console_client, database
):
    _, order = await signed_in_operator(console_client, database)
    form = form_of((await console_client.get(f"/console/orders/{order}")).text)
    sent = await console_client.post(
        f"/console/orders/{order}/messages", data=form | {"reason": "4", "message": "Primero"}, files={}
    )
    assert sent.status_code == 303
    stale = form | {"reason": "4", "message": "Segundo, sin respuesta"}  # a page opened before the send

    english = await console_client.post(f"/console/orders/{order}/messages", data=stale, files={})
    spanish = await console_client.post(
        f"/console/orders/{order}/messages", data=stale, files={}, headers={"Accept-Language": "es-AR"}
    )

    assert english.status_code == spanish.status_code == 422
    assert "The buyer has not replied to the last seller message" in english.text
    assert "El comprador no respondió el último mensaje del vendedor" in spanish.text
    assert "(awaiting_buyer_reply)" in spanish.text
    assert "Segundo, sin respuesta" in english.text  # the operator's text is kept in the form
    assert await stored(database, order) == [("outbound", "Primero", "queued")]


async def test_a_send_without_its_csrf_token_or_to_another_account_stores_nothing(console_client, database):
    _, order = await signed_in_operator(console_client, database)
    theirs = await make_order(database, await make_tenant(database))
    form = form_of((await console_client.get(f"/console/orders/{order}")).text)
    fields = {"reason": "4", "message": "Hola", "seen": form["seen"]}

    forged = await console_client.post(f"/console/orders/{order}/messages", data=fields, files={})
    other = await console_client.post(f"/console/orders/{theirs}/messages", data=fields | form, files={})

    assert forged.status_code == 403
    assert other.status_code == 404
    assert await stored(database, order) == []
    assert await stored(database, theirs) == []


async def test_an_attachment_is_sent_after_the_buyers_reply_and_downloaded(console_client, database):
    _, order = await signed_in_operator(console_client, database)
    form = form_of((await console_client.get(f"/console/orders/{order}")).text)
    await console_client.post(
        f"/console/orders/{order}/messages", data=form | {"reason": "4", "message": "Hola"}
    )
    await buyer_replies(database, order, "Mandame la factura")
    form = form_of((await console_client.get(f"/console/orders/{order}")).text)

    sent = await console_client.post(
        f"/console/orders/{order}/messages",
        data=form | {"reason": "4", "message": "Te adjunto la factura"},
        files={"attachment": ("factura.pdf", PDF, "application/pdf")},
    )

    assert sent.status_code == 303, sent.text
    page = (await console_client.get(f"/console/orders/{order}")).text
    link = re.search(r'href="(/console/orders/\d+/messages/\d+/attachment)">Download factura.pdf<', page)
    assert link, page
    download = await console_client.get(link.group(1))
    assert download.content == PDF


async def fail(database, order_id: int) -> int:
    """The order's message failed for good, as the worker records it; returns its id."""
    async with database.transaction(write=True) as connection:
        await connection.execute(
            update(messages)
            .where(messages.c.order_id == order_id, messages.c.direction == "outbound")
            .values(
                status="failed",
                failed_at=now(),
                error_code="buyer_account_deactivated",
                error_message="451 Unavailable",
            )
        )
        found = select(messages.c.id).where(messages.c.order_id == order_id)
        return int((await connection.execute(found)).scalar_one())


async def failed_message(database, tenant, text: str) -> tuple[int, int]:
    """An order of the tenant whose one message failed: (order id, message id)."""
    order = await make_order(database, tenant)
    async with database.transaction(write=True) as connection:
        await messaging.send_message(
            connection,
            account_id=tenant.account_id,
            order_id=order,
            parameters=Parameters({"messageOptions": "4", "message": text}),
            max_attachment_bytes=1000,
            now=now(),
        )
    return order, await fail(database, order)


async def test_failed_messages_are_an_administrators_and_requeued_for_their_accounts_only(
    console_client, database
):
    mine, theirs = await make_tenant(database), await make_tenant(database)
    first_order, first = await failed_message(database, mine, "Primero fallido")
    second_order, _ = await failed_message(database, mine, "Segundo fallido")
    their_order, _ = await failed_message(database, theirs, "Ajeno fallido")
    await sign_in(console_client, await make_user(database, mine.account_id, role="admin"))

    page = await console_client.get("/console/failed")
    assert page.status_code == 200
    assert "buyer_account_deactivated" in page.text
    assert "Primero fallido" in page.text
    assert "Ajeno fallido" not in page.text  # another account's dead letter is not shown
    refused = await console_client.post("/console/failed/requeue", data={"message": str(first)})
    assert refused.status_code == 403
    assert (await stored(database, first_order))[0][2] == "failed"

    one = await console_client.post(
        "/console/failed/requeue", data={"csrf": csrf_of(page.text), "message": str(first)}
    )
    assert one.headers["location"] == "/console/failed?requeued=1"
    assert [(await stored(database, order))[0][2] for order in (first_order, second_order)] == [
        "queued",
        "failed",
    ]
    every = await console_client.post("/console/failed/requeue", data={"csrf": csrf_of(page.text)})

    assert every.status_code == 303
    assert every.headers["location"] == "/console/failed?requeued=1"
    assert (await stored(database, second_order))[0][2] == "queued"
    assert (await stored(database, their_order))[0][2] == "failed"
    shown = await console_client.get(every.headers["location"])
    assert "Messages requeued: 1." in shown.text


async def test_an_operator_has_no_failed_page(console_client, database):
    await signed_in_operator(console_client, database)
    inbox = await console_client.get("/console/")
    assert (await console_client.get("/console/failed")).status_code == 404
    refused = await console_client.post("/console/failed/requeue", data={"csrf": csrf_of(inbox.text)})
    assert refused.status_code == 404
    assert 'href="/console/failed"' not in inbox.text


async def test_the_poll_swaps_the_reasons_in_when_they_changed_and_the_operator_has_written_nothing(
    console_client, database
):
    _, order = await signed_in_operator(console_client, database)
    form = form_of((await console_client.get(f"/console/orders/{order}")).text)
    await console_client.post(
        f"/console/orders/{order}/messages", data=form | {"reason": "4", "message": "Hola"}
    )
    waiting = (await console_client.get(f"/console/orders/{order}")).text
    shown = re.search(r'name="shown" value="([^"]*)"', waiting)
    assert shown
    assert re.search(r'<option value="4"[^>]* disabled>', waiting)  # the buyer has not replied
    await buyer_replies(database, order, "Sí, gracias")
    poll = {"HX-Request": "true"}

    idle = await console_client.get(
        f"/console/orders/{order}", params={"idle": "1", "shown": shown.group(1), "reason": "4"}, headers=poll
    )
    writing = await console_client.get(
        f"/console/orders/{order}", params={"idle": "0", "shown": shown.group(1)}, headers=poll
    )

    assert "Sí, gracias" in idle.text
    assert 'hx-swap-oob="true"' in idle.text
    assert re.search(r'<option value="4"[^>]* selected>', idle.text)  # open again, the choice kept
    assert "Sí, gracias" in writing.text
    assert "compose-reasons" not in writing.text  # the form is left as the operator has it


async def test_the_poll_answers_204_while_nothing_shown_changed_and_the_messages_once_they_do(
    console_client, database
):
    _, order = await signed_in_operator(console_client, database)
    shown = (await console_client.get(f"/console/orders/{order}")).text
    version = re.search(r'name="version" value="([^"]*)"', shown)
    assert version
    poll = {"HX-Request": "true"}

    unchanged = await console_client.get(
        f"/console/orders/{order}", params={"idle": "0", "version": version.group(1)}, headers=poll
    )
    await buyer_replies(database, order, "¿Sigue en pie?")
    changed = await console_client.get(
        f"/console/orders/{order}", params={"idle": "0", "version": version.group(1)}, headers=poll
    )

    assert unchanged.status_code == 204  # htmx swaps nothing: links stay put under the pointer
    assert unchanged.content == b""
    assert changed.status_code == 200
    assert "¿Sigue en pie?" in changed.text
    assert re.search(r'name="version" value="([^"]*)"', changed.text).group(1) != version.group(1)
