"""The operator console in a real browser (issue 19): Debian's Chromium driven by Playwright against
postventa served over TCP, on SQLite and PostgreSQL. An operator signs in (a wrong password
refused), finds the order in the inbox, opens its conversation, is answered 404 for another
account's, a form posted without its CSRF token is refused, and signs out; a buyer's new message
appears in the open conversation without a reload. axe-core finds no
serious or critical violation on the login, inbox and conversation pages."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect

from postventa.services import console_users
from postventa.store.engine import Database
from tests.conftest import LiveServer
from tests.factories import buyer_replies, make_order, make_tenant, now

CHROMIUM = Path(os.environ.get("POSTVENTA_TEST_CHROMIUM", "/usr/bin/chromium"))
PASSWORD = "operator password 1"
SERIOUS = {"serious", "critical"}
TIMEOUT_MS = 10_000


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


async def console_user(database: Database, *account_ids: int) -> str:
    email = f"operator-{uuid.uuid4().hex[:10]}@example.com"
    async with database.transaction(write=True) as connection:
        await console_users.create_user(
            connection, email=email, password=PASSWORD, account_ids=list(account_ids), now=now()
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
    context = await browser.new_context()
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


async def test_login_inbox_and_conversation_have_no_serious_accessibility_violation(
    browser: Browser, live_server: LiveServer, database: Database
):
    base = live_server.url
    tenant = await make_tenant(database)
    order = await make_order(database, tenant, Buyer={"Nickname": "ACCESIBLE"})
    await buyer_replies(database, order, "¿Me confirmás la dirección?")
    email = await console_user(database, tenant.account_id)
    context = await browser.new_context(bypass_csp=True)  # axe-core is injected into the page
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    axe = Axe()
    found: dict[str, list[str]] = {}

    await page.goto(f"{base}/console/login")
    found["login"] = await _serious(axe, page)
    await sign_in(page, base, email)
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    found["inbox"] = await _serious(axe, page)
    await page.goto(f"{base}/console/orders/{order}")
    await expect(page.locator(".message.buyer")).to_be_visible()
    found["conversation"] = await _serious(axe, page)
    await context.close()

    assert found == {"login": [], "inbox": [], "conversation": []}


async def _serious(axe: Axe, page: Page) -> list[str]:
    results = await axe.run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']}"
        for violation in results.response["violations"]
        if violation["impact"] in SERIOUS
    ]
