"""The demo's own webhook receiver (issue 20): every demo account's events are POSTed to a small
server the demo runs on the loopback interface, which checks each request with the SDK's
`verify_webhook` and prints what it says, so the demo shows the integrator's side too.

Loopback and `http://` are what the webhook rules refuse by default: the demo's server allows them
(`POSTVENTA_WEBHOOK_ALLOW_PRIVATE`), as a receiver inside the operator's own network would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postventa.config import Settings
from postventa.services import webhooks
from postventa.wiring import open_database

if TYPE_CHECKING:
    from postventa_sdk import WebhookEvent

RECEIVER_PATH = "/events/{account_id:int}"


@dataclass
class DemoReceiver:
    """A running receiver: its base URL and each account's secret (filled once they are registered)."""

    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]
    secrets: dict[int, str] = field(default_factory=dict)

    async def stop(self) -> None:
        """Stop serving and wait for it."""
        self.server.should_exit = True
        await self.task


def describe(event: WebhookEvent) -> str:
    """One line saying what an event tells the integrator."""
    from postventa_sdk import MessageEvent, OrderEvent

    if isinstance(event, MessageEvent):
        message = event.data
        said = f": {message.text!r}" if event.type == "message.received" else ""
        why = message.moderation_reason or message.error_code
        detail = f"{said}{f' ({why})' if why else ''}"
        what = f"order {message.order_id}, message {message.id} is {message.status}{detail}"
    elif isinstance(event, OrderEvent):
        status = event.data.status.value if event.data.status else "unknown"
        what = f"order {event.data.id} is {status}"
    else:
        return f"Webhook {event.type} (verified, {event.webhook_id})"
    return f"Webhook {event.type}: account {event.account_id}, {what} (verified, {event.webhook_id})"


def receiver_app(secrets: dict[int, str], show: Callable[[str], None]) -> Starlette:
    """The receiver: each account's requests verified with that account's secret, then shown."""
    from postventa_sdk import WebhookVerificationError, verify_webhook

    async def receive(request: Request) -> Response:
        secret = secrets.get(request.path_params["account_id"])
        if secret is None:
            return Response(status_code=404)
        body = await request.body()
        try:
            event = verify_webhook(body, request.headers, secret)
        except WebhookVerificationError as error:
            show(f"Webhook refused: {error.code}: {error.message}")
            return Response(status_code=400)
        show(describe(event))
        return Response(status_code=204)

    return Starlette(routes=[Route(RECEIVER_PATH, receive, methods=["POST"])])


async def start_receiver(host: str, show: Callable[[str], None]) -> DemoReceiver | None:
    """The receiver on a free port of `host`; None without the SDK (`pip install ./sdk`)."""
    try:
        import postventa_sdk  # noqa: F401  (the receiver verifies with it)
    except ImportError:
        return None
    secrets: dict[int, str] = {}
    config = uvicorn.Config(
        receiver_app(secrets, show), host=host, port=0, access_log=False, log_config=None, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # raises what stopped it
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return DemoReceiver(f"http://{host}:{port}", server, task, secrets)


async def register_receiver(
    settings: Settings, receiver: DemoReceiver, account_ids: list[int], now: dt.datetime
) -> None:
    """An endpoint of every account, for every event, at the receiver; their secrets to it."""
    database = open_database(settings)
    try:
        for account_id in account_ids:
            url = f"{receiver.url}{RECEIVER_PATH.replace('{account_id:int}', str(account_id))}"
            checked = await webhooks.check_url(url, allow_private=settings.webhook_allow_private)
            async with database.transaction(write=True) as connection:
                created = await webhooks.register_endpoint(
                    connection, database.token_cipher, account_id, checked, None, now
                )
            receiver.secrets[account_id] = created.secret
    finally:
        await database.dispose()
