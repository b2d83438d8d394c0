"""The console's sessions over in-process HTTP on both databases (issue 19, item 2): the sign-in
form, the session cookie's attributes, CSRF on every changing form, the generic refusal and its
slowing down, sign-out, and another account's order answered 404."""

from __future__ import annotations

import re
import uuid

import httpx2
import pytest

from postventa.services import console_users
from postventa.store.engine import Database
from postventa.wiring import create_app, meli_client
from tests.conftest import admin_headers, make_settings
from tests.factories import buyer_replies, make_order, make_tenant, now

PASSWORD = "console password 1"


async def make_user(database: Database, *account_ids: int, role: str = "operator") -> str:
    email = f"op-{uuid.uuid4().hex[:10]}@example.com"
    async with database.transaction(write=True) as connection:
        await console_users.create_user(
            connection, email=email, password=PASSWORD, account_ids=list(account_ids), role=role, now=now()
        )
    return email


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(http: httpx2.AsyncClient, email: str, password: str = PASSWORD) -> httpx2.Response:
    form = await http.get("/console/login")
    assert form.status_code == 200
    return await http.post(
        "/console/login", data={"email": email, "password": password, "csrf": csrf_of(form.text)}
    )


ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture
async def console_client(settings, database):
    """The console over in-process HTTP, asking for English pages (the labels the issue names)."""
    meli = meli_client(settings)
    app = create_app(settings, database=database, meli=meli)
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://postventa.test", headers=ENGLISH
        ) as http:
            yield http
    finally:
        await meli.aclose()


async def test_the_root_and_the_inbox_send_a_stranger_to_sign_in(console_client):
    root = await console_client.get("/")
    assert root.status_code in (303, 307)
    assert root.headers["location"] == "/console/"
    inbox = await console_client.get("/console/")
    assert inbox.status_code == 303
    assert inbox.headers["location"].startswith("/console/login")
    form = await console_client.get("/console/login")
    assert 'for="email">Email<' in form.text
    assert 'for="password">Password<' in form.text
    assert ">Sign in</button>" in form.text


async def test_signing_in_sets_a_signed_http_only_lax_cookie_and_signing_out_ends_it(
    console_client, database
):
    tenant = await make_tenant(database)
    email = await make_user(database, tenant.account_id)

    signed = await sign_in(console_client, email)

    assert signed.status_code == 303, signed.text
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith("pv_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Max-Age=" in cookie
    assert "Secure" not in cookie  # plain HTTP: POSTVENTA_PUBLIC_URL is not https
    inbox = await console_client.get("/console/")
    assert inbox.status_code == 200
    assert email in inbox.text

    refused = await console_client.post("/console/logout", data={})
    assert refused.status_code == 403
    assert (await console_client.get("/console/")).status_code == 200  # still signed in

    out = await console_client.post("/console/logout", data={"csrf": csrf_of(inbox.text)})
    assert out.status_code == 303
    assert (await console_client.get("/console/")).status_code == 303


async def test_a_forged_or_tampered_cookie_is_no_session(console_client, database):
    tenant = await make_tenant(database)
    email = await make_user(database, tenant.account_id)
    signed = await sign_in(console_client, email)
    value = signed.cookies["pv_session"]
    user_id, expires, signature = value.split(".")
    for forged in (
        f"{int(user_id) + 1}.{expires}.{signature}",
        f"{user_id}.{int(expires) + 999}.{signature}",
        "1.9999999999.x",
    ):
        console_client.cookies.clear()
        console_client.cookies.set("pv_session", forged, domain="postventa.test")
        assert (await console_client.get("/console/")).status_code == 303
    console_client.cookies.clear()
    console_client.cookies.set("pv_session", value, domain="postventa.test")
    assert (await console_client.get("/console/")).status_code == 200  # the same jar, the real cookie


async def test_cookies_are_secure_behind_https(database_url, database):
    settings = make_settings(database_url, public_url="https://console.example.com")
    app = create_app(settings, database=database)
    tenant = await make_tenant(database)
    email = await make_user(database, tenant.account_id)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="https://postventa.test", headers=ENGLISH
    ) as http:
        signed = await sign_in(http, email)
    assert signed.status_code == 303
    assert "Secure" in signed.headers["set-cookie"]


async def test_a_sign_in_without_its_csrf_token_is_refused(console_client, database):
    tenant = await make_tenant(database)
    email = await make_user(database, tenant.account_id)
    await console_client.get("/console/login")
    refused = await console_client.post("/console/login", data={"email": email, "password": PASSWORD})
    assert refused.status_code == 403
    assert "pv_session" not in refused.headers.get("set-cookie", "")


async def test_failed_sign_ins_get_one_message_and_are_slowed_per_email(console_client, database):
    tenant = await make_tenant(database)
    email = await make_user(database, tenant.account_id)
    wrong = await sign_in(console_client, email, "not the password")
    unknown = await sign_in(console_client, f"nobody-{uuid.uuid4().hex}@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    message = "The email or the password is not right"
    assert message in wrong.text
    assert message in unknown.text
    for _ in range(4):
        assert (await sign_in(console_client, email, "still not it")).status_code == 401

    right_but_slowed = await sign_in(console_client, email)

    assert right_but_slowed.status_code == 401
    assert message in right_but_slowed.text
    other = await make_user(database, tenant.account_id)
    assert (await sign_in(console_client, other)).status_code == 303  # another email still signs in


async def test_an_email_with_a_control_character_is_no_users_and_signs_in_no_one(console_client, database):
    # A NUL cannot even reach PostgreSQL: the admin API refuses such an email (400, not a 500), and a
    # sign-in with one is not looked up and gets the usual refusal.
    tenant = await make_tenant(database)
    for email in ("ana\x00@tienda.com", "ana\x07@tienda.com"):
        body = {"Email": email, "Password": PASSWORD, "AccountIds": [tenant.account_id]}
        created = await console_client.post("/admin/users", json=body, headers=admin_headers())
        assert created.status_code == 400, created.text
        assert created.json()["Code"] == "invalid_email"
        refused = await sign_in(console_client, email)
        assert refused.status_code == 401
        assert "The email or the password is not right" in refused.text


async def test_an_inbox_search_with_control_characters_finds_what_the_rest_finds(console_client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant, Buyer={"Nickname": "COMPRADOR_NUL"})
    await buyer_replies(database, order_id)
    assert (await sign_in(console_client, await make_user(database, tenant.account_id))).status_code == 303

    found = await console_client.get("/console/", params={"q": "COMPRADOR\x00_NUL\x07"})

    assert found.status_code == 200
    assert "COMPRADOR_NUL" in found.text


async def test_another_accounts_conversation_is_404_and_ones_own_shows(console_client, database):
    mine, theirs = await make_tenant(database), await make_tenant(database)
    my_order = await make_order(database, mine, Buyer={"Nickname": "COMPRADOR_MIO"})
    their_order = await make_order(database, theirs, Buyer={"Nickname": "COMPRADOR_AJENO"})
    await buyer_replies(database, their_order, "Mensaje privado del otro vendedor")
    await sign_in(console_client, await make_user(database, mine.account_id))

    own = await console_client.get(f"/console/orders/{my_order}")
    other = await console_client.get(f"/console/orders/{their_order}")
    attachment = await console_client.get(f"/console/orders/{their_order}/messages/1/attachment")
    inbox = await console_client.get("/console/")

    assert own.status_code == 200
    assert "COMPRADOR_MIO" in own.text
    assert other.status_code == 404
    assert "Mensaje privado" not in other.text
    assert attachment.status_code == 404
    assert "COMPRADOR_AJENO" not in inbox.text
    assert (await console_client.get("/console/orders/999999999999")).status_code == 404
