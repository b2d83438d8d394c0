"""Webhooks delivered to a real HTTP receiver on SQLite and PostgreSQL (issue 20): each event type,
written with the change it reports and signed so that the `standardwebhooks` package (an independent
implementation) verifies it; retries with the same `webhook-id` and body; attempts recorded."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook
from structlog.testing import capture_logs

from postventa.delivery.webhook_dispatch import WebhookDispatcher
from postventa.delivery.webhook_http import WebhookPoster
from postventa.domain.sites import Site
from postventa.meli.models import MeliMessage
from postventa.services import inbound, webhooks
from postventa.services.marketplace import write_synced_orders
from postventa.services.messaging import record_buyer_reply
from postventa.store import outbox
from postventa.store import webhook_deliveries as delivery_store
from postventa.store.links import MarketplaceLink, save_link
from postventa.store.orders import get_order
from postventa.store.tables import messages, webhook_deliveries, webhook_endpoints
from tests.factories import Tenant, buyer_replies, make_order, make_tenant, now
from tests.integration.webhook_receiver import Script, receiver

SELLERS = itertools.count(700_000_000)


@pytest.fixture
def database(isolated_database):
    """The dispatcher claims every due delivery: these tests get a database of their own."""
    return isolated_database


async def localhost(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


async def linked_tenant(database) -> tuple[Tenant, int]:
    tenant = await make_tenant(database)
    seller_id = next(SELLERS)
    async with database.transaction(write=True) as connection:
        link = MarketplaceLink(tenant.account_id, seller_id, Site.MLA, "app", "secret", "refresh", None, None)
        await save_link(connection, link, now(), database.token_cipher)
    return tenant, seller_id


async def add_endpoint(database, tenant: Tenant, url: str, events=None) -> webhooks.EndpointWithSecret:
    checked = await webhooks.check_url(url, allow_private=True, resolver=localhost)
    async with database.transaction(write=True) as connection:
        return await webhooks.register_endpoint(
            connection, database.token_cipher, tenant.account_id, checked, events, now()
        )


_POSTERS: list[WebhookPoster] = []


@pytest.fixture(autouse=True)
async def close_posters():
    """Every dispatcher's connections closed after its test."""
    yield
    while _POSTERS:
        await _POSTERS.pop().aclose()


def dispatcher(
    database, *, schedule=(0.0, 0.0), allow_private=True, timeout=10.0, **options
) -> WebhookDispatcher:
    poster = WebhookPoster(allow_private=allow_private, resolver=localhost, timeout_seconds=timeout)
    _POSTERS.append(poster)
    return WebhookDispatcher(database, poster, retry_schedule=schedule, **options)


async def send(client, tenant: Tenant, database) -> tuple[int, int]:
    order_id = await make_order(database, tenant, ExternalOrderId=str(next(SELLERS)))
    response = await client.post(
        f"/v2/orders/{order_id}/messages", params=tenant.credentials(messageOptions=4, message="Hola")
    )
    assert response.status_code == 200
    return order_id, int(response.json())


async def record(database, outcomes: dict[int, outbox.Outcome], worker: str = "w") -> list[bool]:
    """Claim the messages and record their outcomes as the delivery worker does."""
    async with database.transaction(write=True) as connection:
        claimed = await outbox.claim_due_messages(connection, worker, now(), limit=50, lease_seconds=30)
    attempts = {message.id: message.attempts for message in claimed}
    finished = [
        outbox.FinishedAttempt(message_id, worker, attempts[message_id], outcome, now(), now())
        for message_id, outcome in outcomes.items()
    ]
    async with outbox.queue_statements(database) as connection:
        return await outbox.record_outcomes(connection, finished)


def sent(marketplace_id: str, status: str = "sent", **fields) -> outbox.Outcome:
    attempt_outcome = "pending" if status == "pending_moderation" else status
    return outbox.Outcome(
        status=status,
        attempt_outcome=attempt_outcome,
        route="action_guide",
        marketplace_message_id=marketplace_id,
        **fields,
    )


FAILED = outbox.Outcome(
    status="failed", attempt_outcome="failed", route="action_guide", error_code="x_failed", error_message="no"
)


def verified(secret: str, request) -> dict:
    """The body, once `standardwebhooks` verified its signature."""
    return Webhook(secret).verify(request.body, request.headers)


async def deliveries(database) -> list:
    async with database.transaction() as connection:
        return list(await connection.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)))


async def test_each_event_arrives_signed_and_rendered_as_the_api_renders_it(client, database):
    tenant, seller_id = await linked_tenant(database)
    async with receiver() as hooks:
        made = await add_endpoint(database, tenant, hooks.url + "/all")
        orders_and_messages = [await send(client, tenant, database) for _ in range(4)]
        (o_sent, m_sent), (_, m_mod), (_, m_fail), (_, m_late) = orders_and_messages
        await record(
            database,
            {
                m_sent: sent("ml-1"),
                m_mod: sent("ml-2", "moderated", moderation_reason="PERSONAL_DATA"),
                m_fail: FAILED,
                m_late: sent("ml-4", "pending_moderation"),
            },
        )
        reply = await buyer_replies(database, o_sent, "¿Cuándo llega?")
        async with database.transaction(
            write=True
        ) as connection:  # the late verdict, read from Mercado Libre
            late = MeliMessage(
                "ml-4", seller_id, 1, "moderated", "Hola", "rejected", "PERSONAL_DATA", None, None
            )
            await inbound.observe_message(connection, tenant.account_id, seller_id, late, now())
            order = await get_order(connection, tenant.account_id, o_sent)
            assert order is not None
            shipped = order.data.__class__(**{**vars(order.data), "status": 2, "shipping_id": 555})
            assert await write_synced_orders(connection, tenant.account_id, [shipped], now()) == 1
        await dispatcher(database).drain()
        arrived = await hooks.wait_for("/all", 6)

    bodies = [verified(made.secret, request) for request in arrived]
    by_type = {(body["type"], body["data"]["Id"]): body for body in bodies}
    assert set(by_type) == {
        ("message.sent", m_sent),
        ("message.moderated", m_mod),
        ("message.failed", m_fail),
        ("message.moderated", m_late),
        ("message.received", reply),
        ("order.updated", o_sent),
    }
    for body in bodies:
        assert body["data"]["AccountId"] == tenant.account_id
        assert body["timestamp"].endswith("Z")
    assert by_type[("message.failed", m_fail)]["data"]["ErrorCode"] == "x_failed"
    assert by_type[("message.moderated", m_late)]["data"]["ModerationReason"] == "PERSONAL_DATA"
    assert by_type[("order.updated", o_sent)]["data"]["Shipping"]["ExternalShippingId"] == 555
    # `data` is exactly what the API answers for the message (and the order)
    for (event_type, subject), body in by_type.items():
        path = f"/v2/orders/{o_sent}" if event_type == "order.updated" else None
        if event_type == "message.received":
            path = f"/v2/orders/{o_sent}/messages/{subject}"
        elif path is None:
            order_of = {m: o for o, m in orders_and_messages}
            path = f"/v2/orders/{order_of[subject]}/messages/{subject}"
        shown = await client.get(path, params=tenant.credentials())
        assert body["data"] == shown.json() | {"AccountId": tenant.account_id}, event_type


async def test_only_subscribed_endpoints_of_the_account_get_an_event(client, database):
    tenant, _ = await linked_tenant(database)
    other, _ = await linked_tenant(database)
    async with receiver() as hooks:
        await add_endpoint(database, tenant, hooks.url + "/failed-only", ["message.failed"])
        await add_endpoint(database, other, hooks.url + "/other")
        _, message_id = await send(client, tenant, database)
        await record(database, {message_id: sent("ml-9")})
        assert await deliveries(database) == []
        await buyer_replies(database, await make_order(database, tenant), "hola")
        assert await deliveries(database) == []


async def test_a_lost_lease_writes_no_event(client, database):
    tenant, _ = await linked_tenant(database)
    await add_endpoint(database, tenant, "http://127.0.0.1:9/x")
    _, message_id = await send(client, tenant, database)
    assert await record(database, {message_id: sent("ml-1")}, worker="w") == [True]
    _, second = await send(client, tenant, database)
    async with database.transaction(write=True) as connection:
        await outbox.claim_due_messages(connection, "w", now(), limit=5, lease_seconds=30)
    lost = outbox.FinishedAttempt(second, "not-the-holder", 1, sent("ml-2"), now(), now())
    async with outbox.queue_statements(database) as connection:
        assert await outbox.record_outcomes(connection, [lost]) == [False]
    assert [row.subject_id for row in await deliveries(database)] == [message_id]


async def test_an_event_rolls_back_with_its_change(client, database):
    tenant, _ = await linked_tenant(database)
    await add_endpoint(database, tenant, "http://127.0.0.1:9/x")
    order_id = await make_order(database, tenant)

    async def reply_then_fail() -> None:
        async with database.transaction(write=True) as connection:
            await record_buyer_reply(connection, order_id=order_id, text="hola", now=now())
            raise RuntimeError("the transaction fails after the reply")

    with pytest.raises(RuntimeError):
        await reply_then_fail()
    assert await deliveries(database) == []
    async with database.transaction() as connection:
        assert (
            await connection.execute(
                select(func.count()).select_from(messages).where(messages.c.order_id == order_id)
            )
        ).scalar_one() == 0


async def test_retries_carry_the_same_webhook_id_and_body_then_the_attempts_are_readable(client, database):
    tenant, _ = await linked_tenant(database)
    async with receiver() as hooks:
        hooks.scripts["/flaky"] = Script(statuses=[500, 503, 200])
        made = await add_endpoint(database, tenant, hooks.url + "/flaky")
        order_id = await make_order(database, tenant)
        await buyer_replies(database, order_id, "hola")
        worker = dispatcher(database, schedule=(0.0, 0.0, 0.0))
        with capture_logs() as logged:
            for _ in range(3):
                await worker.drain()
        arrived = await hooks.wait_for("/flaky", 3)
    attempt_lines = [line for line in logged if line["event"] == "webhook_attempt"]
    assert [line["outcome"] for line in attempt_lines] == ["retry", "retry", "delivered"]
    secret_key = made.secret.removeprefix("whsec_")
    for line in logged:  # no secret, signature, URL or body in the logs
        text = json.dumps(line, default=str)
        assert secret_key not in text
        assert "/flaky" not in text
        assert arrived[0].headers["webhook-signature"] not in text
        assert "hola" not in text
    assert len({request.headers["webhook-id"] for request in arrived}) == 1
    assert arrived[0].headers["webhook-id"].startswith("msg_")
    assert len({request.body for request in arrived}) == 1
    for request in arrived:
        verified(made.secret, request)
    async with database.transaction() as connection:
        attempts = await webhooks.list_attempts(connection, made.endpoint.id)
        endpoint = await webhooks.get_endpoint(connection, made.endpoint.id)
    assert [(a.attempt, a.http_status) for a in attempts] == [(3, 200), (2, 503), (1, 500)]
    assert attempts[-1].error == "HTTP 500: receiver says no"
    assert {a.delivery_status for a in attempts} == {"delivered"}
    assert all(a.webhook_id == arrived[0].headers["webhook-id"] for a in attempts)
    assert endpoint.last_success_at is not None
    assert endpoint.failing_since is None


async def test_a_spent_schedule_fails_the_delivery_and_five_days_of_failures_disable_the_endpoint(database):
    tenant, _ = await linked_tenant(database)
    async with receiver() as hooks:
        hooks.scripts["/down"] = Script(statuses=[500])
        made = await add_endpoint(database, tenant, hooks.url + "/down")
        await buyer_replies(database, await make_order(database, tenant), "hola")
        worker = dispatcher(database, schedule=(0.0,))
        await worker.drain()
        await worker.drain()
        [delivery] = await deliveries(database)
        assert (delivery.status, delivery.attempts) == ("failed", 2)
        async with database.transaction(write=True) as connection:
            endpoint = await webhooks.get_endpoint(connection, made.endpoint.id)
            assert endpoint.enabled
            assert endpoint.failing_since is not None
            await connection.execute(
                webhook_deliveries.update().values(status="pending", attempts=0, next_attempt_at=now())
            )
            await connection.execute(
                webhook_endpoints.update().values(failing_since=now() - dt.timedelta(days=5, seconds=1))
            )
        await worker.drain()
        async with database.transaction() as connection:
            endpoint = await webhooks.get_endpoint(connection, made.endpoint.id)
        assert not endpoint.enabled
        assert endpoint.disabled_reason is not None
        assert "5 days" in endpoint.disabled_reason
        await buyer_replies(database, await make_order(database, tenant), "otra")  # no event while disabled
        assert len(await deliveries(database)) == 1
        async with database.transaction(write=True) as connection:  # held while disabled
            await connection.execute(
                webhook_deliveries.update().values(status="pending", next_attempt_at=now())
            )
        await worker.drain()
        assert [row.status for row in await deliveries(database)] == ["pending"]
        hooks.scripts["/down"] = Script(statuses=[200])
        async with database.transaction(write=True) as connection:
            enabled = await webhooks.update_endpoint(connection, made.endpoint.id, enabled=True, now=now())
        assert (enabled.enabled, enabled.failing_since, enabled.disabled_reason) == (True, None, None)
        await worker.drain()
        assert [row.status for row in await deliveries(database)] == ["delivered"]


async def test_finished_deliveries_are_pruned_with_their_attempts_after_the_retention(database):
    tenant, _ = await linked_tenant(database)
    async with receiver() as hooks:
        made = await add_endpoint(database, tenant, hooks.url + "/kept")
        for text in ("old", "new"):
            await buyer_replies(database, await make_order(database, tenant), text)
        await dispatcher(database).drain()
    old, new = await deliveries(database)
    async with database.transaction(write=True) as connection:
        await connection.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.id == old.id)
            .values(finished_at=now() - dt.timedelta(days=8))
        )
        assert await delivery_store.prune_finished(connection, now() - dt.timedelta(days=7), limit=10) == 1
        attempts = await webhooks.list_attempts(connection, made.endpoint.id)
    assert [row.id for row in await deliveries(database)] == [new.id]
    assert [attempt.delivery_id for attempt in attempts] == [new.id]


async def test_a_rotated_secret_signs_beside_the_new_one(database):
    tenant, _ = await linked_tenant(database)
    async with receiver() as hooks:
        made = await add_endpoint(database, tenant, hooks.url + "/rotating")
        async with database.transaction(write=True) as connection:
            rotated = await webhooks.rotate_secret(connection, database.token_cipher, made.endpoint.id, now())
        await buyer_replies(database, await make_order(database, tenant), "hola")
        await dispatcher(database).drain()
        [request] = await hooks.wait_for("/rotating", 1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verified(made.secret, request) == verified(rotated.secret, request)


async def test_a_delivery_whose_worker_died_is_delivered_by_another_with_the_same_id_and_body(database):
    tenant, _ = await linked_tenant(database)
    async with receiver() as hooks:
        made = await add_endpoint(database, tenant, hooks.url + "/again")
        await buyer_replies(database, await make_order(database, tenant), "hola")
        dead = dispatcher(database, lease_seconds=30, worker_id="dead")
        async with database.transaction(write=True) as connection:  # it claims and renders, then dies
            [claimed] = await delivery_store.claim_deliveries(
                connection, "dead", now(), limit=5, lease_seconds=30, per_endpoint=4
            )
        rendered = await dead._render(claimed)
        await dispatcher(database).drain()  # the lease holds: nothing is due yet
        assert hooks.received == []
        await dispatcher(database, clock=lambda: now() + dt.timedelta(seconds=31)).drain()  # it ran out
        [request] = await hooks.wait_for("/again", 1)
    assert request.body.decode() == rendered
    assert request.headers["webhook-id"] == claimed.webhook_id
    verified(made.secret, request)
    [delivery] = await deliveries(database)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert json.loads(delivery.body)["type"] == "message.received"


async def test_a_stop_lets_the_attempts_in_flight_finish_and_be_recorded(database):
    tenant, _ = await linked_tenant(database)
    async with receiver() as hooks:
        hooks.scripts["/slowish"] = Script(delay_seconds=0.5)
        await add_endpoint(database, tenant, hooks.url + "/slowish")
        await buyer_replies(database, await make_order(database, tenant), "hola")
        stop = asyncio.Event()
        running = asyncio.create_task(dispatcher(database, idle_wait_seconds=0.05).run(stop))
        await hooks.wait_for("/slowish", 1)
        stop.set()  # while the receiver still holds the request
        await asyncio.wait_for(running, timeout=5)
    [delivery] = await deliveries(database)
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
