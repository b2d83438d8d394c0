"""The main path end to end over HTTP: send, read the conversation, the buyer answers, send again."""

from __future__ import annotations

from tests.factories import buyer_replies, make_order, make_tenant


async def test_send_then_conversation_shows_it_queued(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)

    sent = await client.post(
        f"/v2/orders/{order_id}/messages", params=tenant.credentials(messageOptions=4, message="Hola")
    )

    assert sent.status_code == 200
    message_id = sent.json()
    assert isinstance(message_id, str)
    assert message_id.isdigit()
    assert sent.headers["location"] == f"/v2/orders/{order_id}/messages/{message_id}"
    conversation = (await client.get(f"/v2/orders/{order_id}/messages", params=tenant.credentials())).json()
    assert [(m["Id"], m["Status"], m["Text"]) for m in conversation["Results"]] == [
        (int(message_id), "queued", "Hola")
    ]


async def test_buyer_reply_unlocks_the_next_message(client, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    params = tenant.credentials(messageOptions="OTHER", message="Primero")
    assert (await client.post(f"/v2/orders/{order_id}/messages", params=params)).status_code == 200
    assert (await client.post(f"/v2/orders/{order_id}/messages", params=params)).status_code == 409

    await buyer_replies(database, order_id)

    assert (await client.post(f"/v2/orders/{order_id}/messages", params=params)).status_code == 200


async def test_live_server_answers(live_server):
    import httpx2

    async with httpx2.AsyncClient(base_url=live_server.url) as http:
        response = await http.post("/v2/orders/1/messages")
    assert response.status_code == 401
    assert response.json()["Code"] == "api_key_missing"
