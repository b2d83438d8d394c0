"""The operator console in a real browser (issue 19): Debian's Chromium driven by Playwright against
postventa served over TCP, on SQLite and PostgreSQL. An operator signs in (a wrong password
refused), finds the order in the inbox, opens its conversation, is answered 404 for another
account's, a form posted without its CSRF token is refused, and signs out; a buyer's new message
appears in the open conversation without a reload; the pages speak Spanish by default and remember
a switch to English. Against the emulator, with the embedded worker delivering: a message sent
from the compose form turns sent without a reload, the buyer's reply appears and changes the
inbox's badges, a second message before the reply is refused inline, an attachment goes and comes
back, a send without its CSRF token stores nothing, and an administrator requeues a message that
failed. axe-core finds no serious or critical violation on the login, inbox, conversation and
failed pages.

With POSTVENTA_SCREENSHOTS_DIR set, the tests save a screenshot of each page there (docs/console/)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy import update

from postventa.domain.parameters import Parameters
from postventa.services import console_users, messaging
from postventa.store.engine import Database
from postventa.store.tables import messages
from tests.conftest import LiveServer
from tests.e2e.conftest import World
from tests.factories import buyer_replies, make_order, make_tenant, now

CHROMIUM = Path(os.environ.get("POSTVENTA_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = os.environ.get("POSTVENTA_SCREENSHOTS_DIR")
ENGLISH = "en-US"
PASSWORD = "operator password 1"
SERIOUS = {"serious", "critical"}
TIMEOUT_MS = 10_000
DELIVERY_MS = 20_000  # through the worker, the emulator and its notification, and a poll
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
# A compose form posted from the page's own origin, with the session cookie but no CSRF token.
FORM_WITHOUT_TOKEN = """async (url) => {
  const body = new FormData();
  body.append("reason", "4");
  body.append("message", "Sin token");
  return (await fetch(url, {method: "POST", body})).status;
}"""


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium (.ci/run installs it; Playwright's own download cannot work here)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (README, tests).")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        await launched.close()


async def console_user(database: Database, *account_ids: int, role: str = "operator") -> str:
    email = f"operator-{uuid.uuid4().hex[:10]}@example.com"
    async with database.transaction(write=True) as connection:
        await console_users.create_user(
            connection, email=email, password=PASSWORD, account_ids=list(account_ids), role=role, now=now()
        )
    return email


async def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/console/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_an_operator_signs_in_finds_the_order_reads_it_and_signs_out(
    browser: Browser, live_server: LiveServer, database: Database
):
    base = live_server.url
    mine, theirs = await make_tenant(database, name="Tienda Propia"), await make_tenant(database)
    nickname = f"COMPRADOR_{uuid.uuid4().hex[:6].upper()}"
    order = await make_order(database, mine, Buyer={"Nickname": nickname})
    await buyer_replies(database, order, "Hola, ¿cuándo llega mi pedido?")
    their_order = await make_order(database, theirs, Buyer={"Nickname": "AJENO"})
    email = await console_user(database, mine.account_id)
    context = await browser.new_context(locale=ENGLISH)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()

    await sign_in(page, base, email, "a wrong password")
    await expect(page.get_by_role("alert")).to_contain_text("The email or the password is not right")
    assert page.url.endswith("/console/login")

    await sign_in(page, base, email)
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await expect(page).to_have_title("(1) Inbox · postventa")
    await page.get_by_label("Search").fill(nickname)
    await page.get_by_role("button", name="Filter").click()
    row = page.get_by_role("row").filter(has_text=nickname)
    await expect(row).to_have_count(1)
    await expect(row.get_by_text("Unread")).to_be_visible()
    await expect(row.get_by_text("Waiting for an answer")).to_be_visible()

    await row.get_by_role("link", name=f"Order {order}").click()
    await expect(page.get_by_role("heading", name=f"Order {order} · {nickname}")).to_be_visible()
    await expect(page.locator(".message.buyer")).to_contain_text("¿cuándo llega mi pedido?")
    await buyer_replies(database, order, "Sigo esperando, gracias")
    await expect(page.locator(".message.buyer").nth(1)).to_contain_text("Sigo esperando")  # no reload
    await page.goto(f"{base}/console/")
    await expect(page.get_by_role("row").filter(has_text=nickname).get_by_text("Unread")).to_have_count(0)

    other = await page.goto(f"{base}/console/orders/{their_order}")
    assert other is not None
    assert other.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()

    forged = await page.evaluate(
        "async () => (await fetch('/console/logout', {method: 'POST', body: new URLSearchParams({})})).status"
    )
    assert forged == 403
    await page.goto(f"{base}/console/")
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()  # still signed in

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await page.goto(f"{base}/console/")
    assert page.url.startswith(f"{base}/console/login")
    await context.close()


async def test_login_inbox_conversation_and_failed_pages_have_no_serious_accessibility_violation(
    browser: Browser, live_server: LiveServer, database: Database
):
    base = live_server.url
    tenant = await make_tenant(database)
    order = await make_order(database, tenant, Buyer={"Nickname": "ACCESIBLE"})
    await buyer_replies(database, order, "¿Me confirmás la dirección?")
    failed_order = await make_order(database, tenant, Buyer={"Nickname": "FALLIDO"})
    await failed_message(database, tenant.account_id, failed_order)
    email = await console_user(database, tenant.account_id, role="admin")
    context = await browser.new_context(bypass_csp=True, locale=ENGLISH)  # axe-core is injected
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    axe = Axe()
    found: dict[str, list[str]] = {}

    await page.goto(f"{base}/console/login")
    found["login"] = await _serious(axe, page)
    await screenshot(page, "login")
    await sign_in(page, base, email)
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    found["inbox"] = await _serious(axe, page)
    await page.goto(f"{base}/console/orders/{order}")
    await expect(page.locator(".message.buyer")).to_be_visible()
    await expect(page.get_by_label("Reason")).to_be_visible()
    found["conversation"] = await _serious(axe, page)
    await page.get_by_role("link", name="Failed messages").click()
    await expect(page.get_by_role("row").filter(has_text="FALLIDO")).to_be_visible()
    found["failed"] = await _serious(axe, page)
    await context.close()

    assert found == {"login": [], "inbox": [], "conversation": [], "failed": []}


async def test_pages_are_in_spanish_by_default_and_a_chosen_language_is_remembered(
    browser: Browser, live_server: LiveServer, database: Database
):
    base = live_server.url
    tenant = await make_tenant(database)
    order = await make_order(database, tenant, Buyer={"Nickname": "IDIOMAS"})
    email = await console_user(database, tenant.account_id)
    context = await browser.new_context(locale="es-AR")
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()

    await page.goto(f"{base}/console/login")
    await expect(page.locator("html")).to_have_attribute("lang", "es")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Contraseña").fill(PASSWORD)
    await page.get_by_role("button", name="Ingresar").click()
    await expect(page.get_by_role("heading", name="Bandeja de entrada")).to_be_visible()
    await page.goto(f"{base}/console/orders/{order}")
    for label in ("Motivo", "Mensaje", "Adjunto"):
        await expect(page.get_by_label(label, exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Enviar")).to_be_visible()

    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name=f"Order {order} · IDIOMAS")).to_be_visible()
    await expect(page.get_by_label("Reason")).to_be_visible()
    await page.goto(f"{base}/console/")  # the browser still asks for Spanish: the switch wins
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await page.get_by_role("link", name="Português").click()
    await expect(page.get_by_role("heading", name="Caixa de entrada")).to_be_visible()
    await context.close()


async def test_an_operator_sends_sees_it_sent_and_answered_and_sends_a_file(
    browser: Browser, world: World, postventa: LiveServer, database: Database
):
    base = postventa.url
    seller = await world.linked_seller("MLA")
    created = await world.emulator_order(seller, Buyer={"Id": 7001, "Nickname": "COMPRADOR_E2E"})
    await world.sync(seller)
    order = await world.local_order_id(seller, created["OrderId"])
    email = await console_user(database, seller.account_id)
    context = await browser.new_context(locale=ENGLISH)
    context.set_default_timeout(TIMEOUT_MS)
    page, stale, inbox = await context.new_page(), await context.new_page(), await context.new_page()
    await sign_in(page, base, email)
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await stale.goto(f"{base}/console/orders/{order}")  # a second tab, open before the send
    await stale.get_by_label("Reason").select_option("4")
    await stale.get_by_label("Message").fill("Un segundo mensaje antes de la respuesta")

    await page.goto(f"{base}/console/orders/{order}")
    await page.get_by_label("Reason").select_option("4")
    await page.get_by_label("Message").fill("Hola, tu pedido sale mañana")
    await expect(page.locator("#compose-count")).to_have_text("27")
    await page.get_by_role("button", name="Send").click()
    seller_messages = page.locator(".message.seller")
    await expect(seller_messages.first.locator(".status-name")).to_have_text("sent", timeout=DELIVERY_MS)

    await stale.get_by_role("button", name="Send").click()
    await expect(stale.get_by_role("alert")).to_contain_text(
        "The buyer has not replied to the last seller message"
    )
    forged = await page.evaluate(FORM_WITHOUT_TOKEN, f"/console/orders/{order}/messages")
    assert forged == 403
    assert len(await world.conversation(seller, order)) == 1  # neither the refused nor the forged

    await inbox.goto(f"{base}/console/?q={order}")
    row = inbox.get_by_role("row").filter(has_text=f"Order {order}")
    await expect(row.get_by_text("Waiting for an answer")).to_have_count(0)
    pack = created["PackId"] or created["OrderId"]
    await world.meli.post(
        f"/_emulator/packs/{pack}/buyer-messages", json={"Text": "¡Gracias! Mandame la factura"}
    )
    await expect(page.locator(".message.buyer")).to_contain_text("Mandame la factura", timeout=DELIVERY_MS)
    await expect(row.get_by_text("Waiting for an answer")).to_be_visible(timeout=DELIVERY_MS)  # no reload
    await expect(row.get_by_text("Unread")).to_have_count(0)  # the open conversation has shown it
    await screenshot(inbox, "inbox")

    await expect(page.locator('#compose-reason option[value="4"]')).to_be_enabled()  # refreshed by the poll
    await page.get_by_label("Reason").select_option("4")
    await page.get_by_label("Message").fill("Te adjunto la factura")
    await page.get_by_label("Attachment").set_input_files(
        files=[{"name": "factura.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await page.get_by_role("button", name="Send").click()
    await expect(seller_messages.nth(1).locator(".status-name")).to_have_text("sent", timeout=DELIVERY_MS)
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download factura.pdf").click()
    download = await downloading.value
    assert Path(await download.path()).read_bytes() == PDF
    await screenshot(page, "conversation")
    await context.close()


async def test_an_administrator_requeues_a_message_that_failed(
    browser: Browser, world: World, postventa: LiveServer, database: Database
):
    base = postventa.url
    seller = await world.linked_seller("MLA")
    created = await world.emulator_order(seller, Buyer={"Id": 7002, "Nickname": "CUENTA_DESACTIVADA"})
    await world.sync(seller)
    order = await world.local_order_id(seller, created["OrderId"])
    email = await console_user(database, seller.account_id, role="admin")
    context = await browser.new_context(locale=ENGLISH)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await sign_in(page, base, email)
    await world.faults([{"Route": "POST /messages/*", "Kind": "451", "Rate": 1.0}])  # the buyer is gone

    await page.goto(f"{base}/console/orders/{order}")
    await page.get_by_label("Reason").select_option("4")
    await page.get_by_label("Message").fill("Hola, ¿recibiste tu compra?")
    await page.get_by_role("button", name="Send").click()
    status = page.locator(".message.seller .status-name")
    await expect(status).to_have_text("failed", timeout=DELIVERY_MS)
    await page.get_by_role("link", name="Failed messages").click()
    row = page.get_by_role("row").filter(has_text=f"Order {order}")
    await expect(row).to_contain_text("buyer_account_deactivated")
    await screenshot(page, "failed")
    await world.faults([])

    await row.get_by_role("button", name="Requeue").click()
    await expect(page.get_by_role("status")).to_have_text("Messages requeued: 1.")
    await expect(page.get_by_role("row").filter(has_text=f"Order {order}")).to_have_count(0)
    await page.goto(f"{base}/console/orders/{order}")
    await expect(status).to_have_text("sent", timeout=DELIVERY_MS)
    await context.close()


async def _serious(axe: Axe, page: Page) -> list[str]:
    results = await axe.run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']}"
        for violation in results.response["violations"]
        if violation["impact"] in SERIOUS
    ]


async def screenshot(page: Page, name: str) -> None:
    """The page as it looks, for docs/console.md, when POSTVENTA_SCREENSHOTS_DIR asks for it."""
    if SCREENSHOTS:
        await page.screenshot(path=Path(SCREENSHOTS) / f"{name}.png", full_page=True)


async def failed_message(database: Database, account_id: int, order_id: int) -> None:
    """A message of the order that failed for good, as the worker records one."""
    async with database.transaction(write=True) as connection:
        await messaging.send_message(
            connection,
            account_id=account_id,
            order_id=order_id,
            parameters=Parameters({"messageOptions": "4", "message": "Hola, ¿llegó bien?"}),
            max_attachment_bytes=1000,
            now=now(),
        )
        await connection.execute(
            update(messages)
            .where(messages.c.order_id == order_id)
            .values(status="failed", failed_at=now(), error_code="buyer_account_deactivated")
        )
