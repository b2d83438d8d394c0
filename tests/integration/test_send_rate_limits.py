"""Contract §3.5 check 4 and §3.6 over HTTP: the per-key rate limit of sends and reads (429 with
Retry-After, nothing stored), and the x-ratelimit-* headers on every answer once the key is known."""

from __future__ import annotations

import pytest

from tests.factories import make_order, make_tenant
from tests.integration.http_helpers import (
    assert_accepted,
    assert_rate_limit_headers,
    assert_refused,
    conversation,
    custom_client,
    messages_url,
    send,
)

TEXT = {"messageOptions": 4, "message": "Hola"}

# --- check 4: the rate limit ----------------------------------------------------------------------


async def test_4_third_send_in_a_minute_is_429_and_stores_nothing(database_url, database):
    tenant = await make_tenant(database)
    other = await make_tenant(database)
    first, second, third = [await make_order(database, tenant) for _ in range(3)]
    async with custom_client(database_url, database, rate_limits="send=2/minute,read=5/minute") as http:
        accepted = [await send(http, tenant, order_id, **TEXT) for order_id in (first, second)]
        refused = await send(http, tenant, third, **TEXT)

        for response, remaining in zip(accepted, ("1", "0"), strict=True):
            assert_accepted(response)
            assert_rate_limit_headers(response)
            assert response.headers["x-ratelimit-limit"] == "2"
            assert response.headers["x-ratelimit-remaining"] == remaining
        assert_refused(refused, 429, "rate_limited")
        assert_rate_limit_headers(refused, allowed=False)
        assert refused.headers["x-ratelimit-limit"] == "2"
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["retry-after"] == refused.headers["x-ratelimit-retryafter"]
        assert int(refused.headers["retry-after"]) <= 60

        # The refused send stored nothing: reads count apart and still work.
        assert await conversation(http, tenant, third) == []
        assert len(await conversation(http, tenant, first)) == 1
        # Check 4 comes before checks 5 and 6; checks 1-3 come before it.
        assert_refused(await send(http, tenant, "abc", **TEXT), 429, "rate_limited")
        assert_refused(await send(http, tenant, 2**62, **TEXT), 429, "rate_limited")
        assert_refused(
            await http.post(messages_url(third), params={"API_KEY": tenant.api_key, **TEXT}),
            400,
            "account_id_missing",
        )
        assert_refused(
            await http.post(messages_url(third), params={**other.credentials(), "API_KEY": "nope", **TEXT}),
            401,
            "api_key_invalid",
        )
        # The limit is per key: another key still sends.
        other_order = await make_order(database, other)
        assert_accepted(await send(http, other, other_order, **TEXT))


async def test_4_reads_have_their_own_limit(database_url, database):
    tenant = await make_tenant(database)
    order_id = await make_order(database, tenant)
    async with custom_client(database_url, database, rate_limits="send=2/minute,read=5/minute") as http:
        for _ in range(5):
            assert (await http.get(messages_url(order_id), params=tenant.credentials())).status_code == 200
        refused = await http.get(messages_url(order_id), params=tenant.credentials())
        assert_refused(refused, 429, "rate_limited")
        assert refused.headers["x-ratelimit-limit"] == "5"
        assert int(refused.headers["retry-after"]) >= 1
        assert_accepted(await send(http, tenant, order_id, **TEXT))


# --- rate-limit headers on every answer once the key is known -------------------------------------


@pytest.mark.parametrize(
    ("scenario", "status", "code"),
    [
        ("accepted", 200, None),
        ("account_missing", 400, "account_id_missing"),
        ("account_invalid", 400, "account_id_invalid"),
        ("account_not_allowed", 403, "account_not_allowed"),
        ("order_id_invalid", 400, "order_id_invalid"),
        ("order_not_found", 404, "order_not_found"),
        ("reason_invalid", 400, "reason_invalid"),
        ("precondition", 412, "order_cancelled"),
        ("conflict", 409, "awaiting_buyer_reply"),
        ("read_ok", 200, None),
        ("read_not_found", 404, "order_not_found"),
        ("read_account_missing", 400, "account_id_missing"),
        ("list_orders", 200, None),
        ("list_orders_bad_limit", 400, "limit_invalid"),
        ("options", 200, None),
        ("message_not_found", 404, "message_not_found"),
    ],
)
async def test_rate_limit_headers_once_the_key_is_known(client, database, scenario, status, code):
    tenant = await make_tenant(database)
    other = await make_tenant(database)
    order_id = await make_order(database, tenant)
    cancelled = await make_order(database, tenant, Status=90)
    key_only = {"API_KEY": tenant.api_key, **TEXT}
    if scenario == "conflict":
        assert_accepted(await send(client, tenant, order_id, **TEXT))

    response = {
        "accepted": lambda: send(client, tenant, order_id, **TEXT),
        "account_missing": lambda: client.post(messages_url(order_id), params=key_only),
        "account_invalid": lambda: client.post(messages_url(order_id), params={**key_only, "accountId": "x"}),
        "account_not_allowed": lambda: send(client, tenant, order_id, accountId=other.account_id, **TEXT),
        "order_id_invalid": lambda: send(client, tenant, "abc", **TEXT),
        "order_not_found": lambda: send(client, tenant, 2**62, **TEXT),
        "reason_invalid": lambda: send(client, tenant, order_id, messageOptions=7),
        "precondition": lambda: send(client, tenant, cancelled, **TEXT),
        "conflict": lambda: send(client, tenant, order_id, **TEXT),
        "read_ok": lambda: client.get(messages_url(order_id), params=tenant.credentials()),
        "read_not_found": lambda: client.get(f"/v2/orders/{2**62}", params=tenant.credentials()),
        "read_account_missing": lambda: client.get("/v2/orders", params={"API_KEY": tenant.api_key}),
        "list_orders": lambda: client.get("/v2/orders", params=tenant.credentials()),
        "list_orders_bad_limit": lambda: client.get("/v2/orders", params=tenant.credentials(limit=0)),
        "options": lambda: client.get(f"{messages_url(order_id)}/options", params=tenant.credentials()),
        "message_not_found": lambda: client.get(
            f"{messages_url(order_id)}/{2**62}", params=tenant.credentials()
        ),
    }[scenario]
    answered = await response()

    assert answered.status_code == status, answered.text
    if code is not None:
        assert_refused(answered, status, code)
    assert_rate_limit_headers(answered)
    # The IETF fields too (draft-ietf-httpapi-ratelimit-headers), named after the endpoint class.
    assert answered.headers["ratelimit-policy"].startswith(('"send";q=', '"read";q='))
    assert answered.headers["ratelimit"].startswith(('"send";r=', '"read";r='))
