"""A link Mercado Libre stopped honouring (`invalid_grant` on refresh): marked `needs_relink` once and
for good, its messages kept queued, shown to the operator (admin API, CLI, metric, log), and linked
again. On SQLite and PostgreSQL, with a scripted Mercado Libre client."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import select, update
from structlog.testing import capture_logs

from postventa.domain.delivery import DeliveryFailure, FailureKind, LinkStatus, classify_response
from postventa.domain.sites import Site
from postventa.meli.client import MeliClient, MeliError
from postventa.meli.models import TokenGrant
from postventa.services.marketplace import link_account, session_for
from postventa.store import outbox
from postventa.store.links import MarketplaceLink, get_link, save_link
from postventa.store.tables import messages
from postventa.wiring import create_app
from tests.conftest import admin_headers, make_settings
from tests.factories import Tenant, make_order, make_tenant
from tests.integration.test_admin_cli import run_cli

ADMIN = admin_headers()
SELLERS = itertools.count(700_000_000 + os.getpid() % 1000 * 100_000)
GRANT_REFUSED = (
    "invalid_grant Error validating grant. Your refresh token may be expired or it was already used"
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ScriptedMeli:
    """Mercado Libre's token endpoint as a test wants it: refuses refreshes (invalid_grant), fails, or
    grants; counts the refreshes it was asked for."""

    def __init__(self, seller_id: int, *, refusal: DeliveryFailure | None = None) -> None:
        self.seller_id = seller_id
        self.refusal = refusal
        self.refreshes: list[str] = []

    async def refresh(
        self, client_id: str, client_secret: str, refresh_token: str, **_options: Any
    ) -> TokenGrant:
        self.refreshes.append(refresh_token)
        if self.refusal is not None:
            raise MeliError(self.refusal, 400)
        serial = len(self.refreshes)
        return TokenGrant(f"access-{serial}", f"refresh-{serial}", 21600, self.seller_id)

    async def me(self, token: str, **_options: Any) -> dict[str, Any]:
        return {"id": self.seller_id}


def invalid_grant() -> DeliveryFailure:
    return classify_response(400, GRANT_REFUSED)


async def linked_tenant(database, *, expired: bool = True) -> tuple[Tenant, int]:
    """A new account (with a key) linked to a new seller; its access token expired (a refresh is
    due) or good for hours."""
    tenant = await make_tenant(database)
    seller_id = next(SELLERS)
    expires_at = now() + (dt.timedelta(minutes=-5) if expired else dt.timedelta(hours=5))
    link = MarketplaceLink(
        tenant.account_id, seller_id, Site.MLA, "app", "app-secret", "refresh-0", "access-0", expires_at
    )
    async with database.transaction(write=True) as connection:
        await save_link(connection, link, now(), database.token_cipher)
    return tenant, seller_id


async def linked_account(database, *, expired: bool = True) -> tuple[int, int]:
    """`linked_tenant`'s account id and seller."""
    tenant, seller_id = await linked_tenant(database, expired=expired)
    return tenant.account_id, seller_id


async def stored_link(database, account_id: int) -> MarketplaceLink:
    async with database.transaction() as connection:
        link = await get_link(connection, account_id, database.token_cipher)
    assert link is not None
    return link


def link_body(seller_id: int, refresh_token: str = "refresh-new") -> dict[str, Any]:
    return {
        "SellerId": seller_id,
        "SiteId": "MLA",
        "ClientId": "app",
        "ClientSecret": "app-secret",
        "RefreshToken": refresh_token,
    }


async def test_invalid_grant_marks_the_link_once_commits_it_and_never_refreshes_again(database):
    account_id, seller_id = await linked_account(database)
    meli = ScriptedMeli(seller_id, refusal=invalid_grant())

    with capture_logs() as logs, pytest.raises(MeliError) as raised:
        await session_for(database, account_id, meli, now())

    assert raised.value.failure.kind is FailureKind.RELINK
    assert raised.value.failure.code == "marketplace_link_revoked"
    assert meli.refreshes == ["refresh-0"]
    link = await stored_link(database, account_id)  # read in a new transaction: the mark was committed
    assert link.status is LinkStatus.NEEDS_RELINK
    assert link.status_reason is not None
    assert "invalid_grant" in link.status_reason
    assert link.status_changed_at is not None
    assert abs((link.status_changed_at - now()).total_seconds()) < 60
    events = [entry for entry in logs if entry["event"] == "marketplace_link_needs_relink"]
    assert len(events) == 1
    assert events[0]["log_level"] == "warning"
    assert (events[0]["account_id"], events[0]["seller_id"]) == (account_id, seller_id)
    logged = json.dumps(events[0], default=str)
    for secret in ("refresh-0", "access-0", "app-secret"):
        assert secret not in logged

    with capture_logs() as again_logs:
        for _ in range(3):
            with pytest.raises(MeliError) as again:
                await session_for(database, account_id, meli, now())
            assert again.value.failure.kind is FailureKind.RELINK
        with pytest.raises(MeliError):  # a 401 on the old token does not ask again either
            await session_for(database, account_id, meli, now(), refused_token="access-0")
    assert meli.refreshes == ["refresh-0"]  # no call to Mercado Libre after the refusal
    assert not [entry for entry in again_logs if entry["event"] == "marketplace_link_needs_relink"]
    assert (await stored_link(database, account_id)).status_changed_at == link.status_changed_at


class SlowMeli(ScriptedMeli):
    """Answers each refresh after a while: concurrent sessions overlap while it is asked, and a
    caller's time limit can run out before the answer."""

    async def refresh(
        self, client_id: str, client_secret: str, refresh_token: str, **options: Any
    ) -> TokenGrant:
        await asyncio.sleep(0.2)
        return await super().refresh(client_id, client_secret, refresh_token, **options)


async def test_concurrent_sessions_ask_mercado_libre_once_and_all_get_the_relink_failure(database):
    account_id, seller_id = await linked_account(database)
    meli = SlowMeli(seller_id, refusal=invalid_grant())

    results = await asyncio.gather(
        *(session_for(database, account_id, meli, now()) for _ in range(4)), return_exceptions=True
    )

    assert meli.refreshes == ["refresh-0"]
    assert all(isinstance(result, MeliError) for result in results), results
    assert {result.failure.kind for result in results} == {FailureKind.RELINK}


async def test_a_caller_cut_short_during_a_refresh_does_not_lose_the_rotated_tokens(database):
    """Mercado Libre rotates the refresh token as it answers: a caller whose time limit runs out
    meanwhile (a send's caps, a delivery's attempt) must not roll the new tokens back, or the link is
    left with a spent refresh token and the next refresh is refused (invalid_grant)."""
    account_id, seller_id = await linked_account(database)
    meli = SlowMeli(seller_id)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await session_for(database, account_id, meli, now())

    for _ in range(100):
        if (await stored_link(database, account_id)).refresh_token == "refresh-1":
            break
        await asyncio.sleep(0.05)
    link = await stored_link(database, account_id)
    assert (link.refresh_token, link.access_token, link.status) == (
        "refresh-1",
        "access-1",
        LinkStatus.ACTIVE,
    )
    session = await session_for(database, account_id, meli, now())
    assert session is not None
    assert session.access_token == "access-1"
    assert meli.refreshes == ["refresh-0"]


async def test_a_valid_token_keeps_working_and_other_refresh_failures_do_not_mark_the_link(database):
    account_id, seller_id = await linked_account(database, expired=False)
    meli = ScriptedMeli(seller_id, refusal=invalid_grant())
    session = await session_for(database, account_id, meli, now())
    assert session is not None
    assert session.access_token == "access-0"
    assert meli.refreshes == []

    unavailable = ScriptedMeli(seller_id, refusal=classify_response(503, "service unavailable"))
    with pytest.raises(MeliError) as raised:
        await session_for(database, account_id, unavailable, now(), refused_token="access-0")
    assert raised.value.failure.kind is not FailureKind.RELINK
    assert (await stored_link(database, account_id)).status is LinkStatus.ACTIVE

    granting = ScriptedMeli(seller_id)
    refreshed = await session_for(database, account_id, granting, now(), refused_token="access-0")
    assert refreshed is not None
    assert refreshed.access_token == "access-1"
    assert (await stored_link(database, account_id)).refresh_token == "refresh-1"


async def queued_message(client, database, tenant: Tenant) -> int:
    """A message queued for the tenant's account through the public API."""
    order_id = await make_order(database, tenant, ExternalOrderId=str(next(SELLERS)))
    response = await client.post(
        f"/v2/orders/{order_id}/messages", params=tenant.credentials(messageOptions=4, message="Hola")
    )
    assert response.status_code == 200, response.text
    return int(response.json())


async def claimable(database, at: dt.datetime) -> tuple[list[int], int]:
    """The ids a claim takes at `at` (claims are put back afterwards: nothing else runs here), and
    how many messages the metrics call due."""
    async with database.transaction(write=True) as connection:
        due = await outbox.count_due(connection, at)
        claimed = await outbox.claim_due_messages(connection, "probe", at, limit=100, lease_seconds=30)
        await connection.execute(
            update(messages)
            .where(messages.c.id.in_([message.id for message in claimed]))
            .values(status="queued", lease_owner=None, lease_expires_at=None, attempts=0)
        )
    return sorted(message.id for message in claimed), due


@pytest.fixture
async def own_client(database_url, isolated_database) -> AsyncIterator[httpx2.AsyncClient]:
    """The app on a database of this test alone: its claims see no other test's messages. Its Mercado
    Libre (nobody listens there: a send's caps come from the local rules) is closed here, since
    in-process HTTP runs no lifespan."""
    meli = MeliClient("http://127.0.0.1:9")
    app = create_app(make_settings(database_url), database=isolated_database, meli=meli)
    try:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client:
            yield client
    finally:
        await meli.aclose()


async def test_claims_skip_a_link_that_needs_relinking_until_it_is_linked_again(
    own_client, isolated_database
):
    client, database = own_client, isolated_database
    tenant, seller_id = await linked_tenant(database)
    account_id = tenant.account_id
    waiting = await queued_message(client, database, tenant)
    other = await queued_message(client, database, (await linked_tenant(database))[0])
    later = now() + dt.timedelta(seconds=1)
    assert await claimable(database, later) == (sorted([waiting, other]), 2)

    with pytest.raises(MeliError):
        await session_for(database, account_id, ScriptedMeli(seller_id, refusal=invalid_grant()), now())
    # As a worker may leave a message it could not deliver: queued, for a later attempt.
    await set_message(database, waiting, next_attempt_at=now() + dt.timedelta(hours=1), attempts=1)
    far_later = now() + dt.timedelta(hours=2)
    assert await claimable(database, far_later) == ([other], 1)
    # Nor is an expired lease of the account taken over: it waits with the others.
    await set_message(database, waiting, status="sending", lease_owner="dead", lease_expires_at=now())
    assert await claimable(database, far_later) == ([other], 1)
    await set_message(
        database,
        waiting,
        status="queued",
        lease_owner=None,
        lease_expires_at=None,
        next_attempt_at=now() + dt.timedelta(hours=1),
    )

    linked_at = now()
    await link_account(database, account_id, link_body(seller_id), ScriptedMeli(seller_id), linked_at)

    link = await stored_link(database, account_id)
    assert (link.status, link.status_reason, link.status_changed_at) == (LinkStatus.ACTIVE, None, linked_at)
    assert link.refresh_token == "refresh-1"
    async with database.transaction() as connection:
        next_at = (
            await connection.execute(select(messages.c.next_attempt_at).where(messages.c.id == waiting))
        ).scalar_one()
    assert next_at == linked_at  # due at once, not an hour later
    assert await claimable(database, linked_at + dt.timedelta(milliseconds=1)) == (
        sorted([waiting, other]),
        2,
    )


async def set_message(database, message_id: int, **values: Any) -> None:
    async with database.transaction(write=True) as connection:
        await connection.execute(update(messages).where(messages.c.id == message_id).values(**values))


async def test_relinking_an_active_link_keeps_when_its_status_changed(database):
    account_id, seller_id = await linked_account(database)
    first = (await stored_link(database, account_id)).status_changed_at
    assert first is not None
    await link_account(database, account_id, link_body(seller_id), ScriptedMeli(seller_id), now())
    assert (await stored_link(database, account_id)).status_changed_at == first


async def test_admin_account_shows_the_link_status_without_secrets(client, database):
    unlinked = await make_tenant(database, name="Sin vincular")
    response = await client.get(f"/admin/accounts/{unlinked.account_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "Id": unlinked.account_id,
        "Name": "Sin vincular",
        "BusinessName": None,
        "DocType": None,
        "DocNumber": None,
        "MercadoLibre": None,
    }

    account_id, seller_id = await linked_account(database)
    active = (await client.get(f"/admin/accounts/{account_id}", headers=ADMIN)).json()
    assert active["MercadoLibre"]["Status"] == "active"
    assert active["MercadoLibre"]["StatusReason"] is None

    with pytest.raises(MeliError):
        await session_for(database, account_id, ScriptedMeli(seller_id, refusal=invalid_grant()), now())
    response = await client.get(f"/admin/accounts/{account_id}", headers=ADMIN)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"Id", "Name", "BusinessName", "DocType", "DocNumber", "MercadoLibre"}
    link = body["MercadoLibre"]
    assert set(link) == {"SellerId", "SiteId", "Status", "StatusReason", "StatusChangedAt"}
    assert (body["Id"], link["SellerId"], link["SiteId"], link["Status"]) == (
        account_id,
        seller_id,
        "MLA",
        "needs_relink",
    )
    assert "invalid_grant" in link["StatusReason"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", link["StatusChangedAt"])
    for secret in ("refresh-0", "access-0", "app-secret"):
        assert secret not in response.text


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"Status", "Message", "Code"}
    assert (body["Status"], body["Code"]) == (status, code)


@pytest.mark.parametrize(
    "authorization", [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic x"}]
)
async def test_admin_account_needs_the_admin_token(client, database, authorization):
    tenant = await make_tenant(database)
    response = await client.get(f"/admin/accounts/{tenant.account_id}", headers=authorization)
    assert_error(response, 401, "admin_token_invalid")


async def test_admin_account_unknown_or_invalid_id(client):
    assert_error(await client.get("/admin/accounts/999999999", headers=ADMIN), 404, "account_not_found")
    assert_error(await client.get("/admin/accounts/abc", headers=ADMIN), 400, "account_id_invalid")


async def test_syncing_orders_of_a_link_that_needs_relinking_is_409_without_calling_mercado_libre(
    client, database
):
    account_id, seller_id = await linked_account(database)
    meli = ScriptedMeli(seller_id, refusal=invalid_grant())
    with pytest.raises(MeliError):
        await session_for(database, account_id, meli, now())
    response = await client.post(f"/admin/accounts/{account_id}/mercadolibre/sync", headers=ADMIN)
    # The app's own client would have answered 502 (nobody listens where it points): not called.
    assert_error(response, 409, "marketplace_link_revoked")


async def test_metrics_gauge_and_readiness_while_a_link_needs_relinking(client, database):
    account_id, seller_id = await linked_account(database)
    async with database.transaction(write=True) as connection:
        await outbox.heartbeat(connection, "relink-test-worker", now())
    series = f'postventa_marketplace_link_needs_relink{{account_id="{account_id}"}}'

    assert f"{series} 0.0" in (await client.get("/metrics")).text
    with pytest.raises(MeliError):
        await session_for(database, account_id, ScriptedMeli(seller_id, refusal=invalid_grant()), now())

    assert f"{series} 1.0" in (await client.get("/metrics")).text
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["Status"] == "ready"

    await link_account(database, account_id, link_body(seller_id), ScriptedMeli(seller_id), now())
    assert f"{series} 0.0" in (await client.get("/metrics")).text


async def test_cli_accounts_show_prints_the_admin_document_and_exits_3_for_an_unknown_account(
    client, database, database_url
):
    account_id, seller_id = await linked_account(database)
    with pytest.raises(MeliError):
        await session_for(database, account_id, ScriptedMeli(seller_id, refusal=invalid_grant()), now())
    from_api = (await client.get(f"/admin/accounts/{account_id}", headers=ADMIN)).json()

    shown = run_cli(database_url, "accounts", "show", account_id)

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == from_api
    assert from_api["MercadoLibre"]["Status"] == "needs_relink"
    for secret in ("refresh-0", "access-0", "app-secret"):
        assert secret not in shown.stdout

    unknown = run_cli(database_url, "accounts", "show", 999_999_999)
    assert unknown.returncode == 3
    assert unknown.stdout == ""
    assert "account_not_found" in unknown.stderr
