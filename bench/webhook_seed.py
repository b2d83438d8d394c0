"""postventa's side of the webhook benchmark (bench/webhooks.py): an account with an endpoint,
due deliveries bulk-inserted with a real event's body, and watching the worker deliver them."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from sqlalchemy import func, insert, select, update

from bench.common import LOOPBACK
from bench.seed import create_tenant
from postventa.domain import webhooks as rules
from postventa.services import webhooks
from postventa.services.webhook_bodies import envelope
from postventa.store.engine import Database
from postventa.store.sealing import TokenCipher
from postventa.store.tables import webhook_deliveries, webhook_endpoints

POLL_SECONDS = 0.2
# A message event's data as the API renders it: the body's size and shape of a real event.
DATA = {
    "Id": 1,
    "OrderId": 1,
    "Direction": "outbound",
    "Reason": {"Key": 4, "Value": "OTHER"},
    "Text": "Hola, tu pedido ya está en camino. ¡Gracias por tu compra!",
    "Attachment": None,
    "Status": "sent",
    "DateCreated": "2026-12-05T12:00:00Z",
    "DateStatus": "2026-12-05T12:00:01Z",
    "DateSent": "2026-12-05T12:00:01Z",
    "DateFailed": None,
    "Attempts": 1,
    "MarketplaceMessageId": "0123456789abcdef",
    "ModerationReason": None,
    "ErrorCode": None,
    "ErrorMessage": None,
    "Source": "postventa",
    "Author": "seller",
    "ReadAt": None,
    "AccountId": 1,
}


# The benchmark's endpoints all sign with this secret, which the receiver is started with.
SECRET = rules.secret_of_key(b"postventa-bench-webhooks-secret!")


async def register_endpoint(
    url: str,
    token_key: str,
    account_id: int,
    endpoint_url: str,
    events: list[str],
    *,
    secret: str | None = None,
) -> int:
    """An endpoint of the account (its secret replaced by `secret`, when given); its id."""
    database = Database(url, token_cipher=TokenCipher([token_key]))

    async def loopback(host: str, port: int) -> list[str]:
        return [LOOPBACK]

    try:
        checked = await webhooks.check_url(endpoint_url, allow_private=True, resolver=loopback)
        async with database.transaction(write=True) as connection:
            made = await webhooks.register_endpoint(
                connection, database.token_cipher, account_id, checked, events, dt.datetime.now(dt.UTC)
            )
            if secret is not None:
                sealed = database.token_cipher.seal(secret)
                await connection.execute(
                    update(webhook_endpoints)
                    .where(webhook_endpoints.c.id == made.endpoint.id)
                    .values(secret=sealed)
                )
        return made.endpoint.id
    finally:
        await database.dispose()


async def new_tenant(url: str, token_key: str) -> Any:
    database = Database(url, token_cipher=TokenCipher([token_key]))
    try:
        return await create_tenant(database, "bench webhooks")
    finally:
        await database.dispose()


async def queue_events(url: str, token_key: str, endpoint_id: int, count: int) -> float:
    """`count` due deliveries of the endpoint, rendered, in one transaction; the commit's time."""
    database = Database(url, token_cipher=TokenCipher([token_key]))
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "endpoint_id": endpoint_id,
            "webhook_id": f"msg_bench{number:012d}",
            "event_type": "message.sent",
            "subject_id": number,
            "occurred_at": now,
            "body": envelope("message.sent", now, DATA | {"Id": number}),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for number in range(count)
    ]
    try:
        async with database.transaction(write=True) as connection:
            await connection.execute(insert(webhook_deliveries), rows)
        return time.time()
    finally:
        await database.dispose()


async def watch_events(url: str, token_key: str, count: int, timeout: float) -> dict[str, Any]:
    database = Database(url, token_cipher=TokenCipher([token_key]))
    d = webhook_deliveries
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with database.transaction() as connection:
                left = (
                    await connection.execute(
                        select(func.count()).where(d.c.status.in_(("pending", "sending")))
                    )
                ).scalar_one()
            if left == 0:
                break
            await asyncio.sleep(POLL_SECONDS)
        async with database.transaction() as connection:
            row = (
                await connection.execute(
                    select(func.count().label("delivered"), func.max(d.c.finished_at).label("last")).where(
                        d.c.status == "delivered"
                    )
                )
            ).one()
    finally:
        await database.dispose()
    return {"delivered": int(row.delivered), "last": row.last.timestamp() if row.last else None}
