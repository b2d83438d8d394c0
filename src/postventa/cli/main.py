"""postventa: serve the API, migrate the database, administer accounts, keys and orders, and use the API
as a client (send, conversation, options: `cli/client.py`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from postventa.cli import client
from postventa.cli.runtime import (
    EXIT_INVALID,
    emit,
    ensure_schema,
    in_transaction,
    now,
    report_error,
    run_command,
    run_worker,
    settings,
    with_marketplace,
)
from postventa.cli.users import users_app
from postventa.cli.webhooks import webhooks_app
from postventa.logs import configure_logging
from postventa.services import admin
from postventa.services.messaging import record_buyer_reply
from postventa.store.copy import copy_database
from postventa.store.engine import Database
from postventa.store.migrate import head_revision, upgrade
from postventa.store.outbox import requeue
from postventa.wiring import open_database

app = typer.Typer(help="Post-sale messaging for Mercado Libre orders.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Seller accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
orders_app = typer.Typer(help="Orders.", no_args_is_help=True)
messages_app = typer.Typer(help="Outbound messages.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(orders_app, name="orders")
app.add_typer(messages_app, name="messages")
app.add_typer(users_app, name="users")
app.add_typer(webhooks_app, name="webhooks")
# The public API as a client, through the postventa-sdk (imported when one of them runs).
app.command("send")(client.send)
app.command("conversation")(client.conversation)
app.command("options")(client.options)

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="TCP port.")]
Workers = Annotated[
    int, typer.Option(min=1, help="API processes on the port; more than one needs POSTVENTA_REDIS_URL.")
]


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000, workers: Workers = 1) -> None:
    """Serve the API. An embedded SQLite database is created and migrated on start."""
    current = settings()
    configure_logging(current.log_level)
    if workers > 1 and current.redis_url is None:
        # Each process would count every API key's requests on its own: N times the limit.
        report_error("redis_required: --workers above 1 needs POSTVENTA_REDIS_URL to share the rate limits")
        raise typer.Exit(EXIT_INVALID)

    async def prepare() -> None:
        database = open_database(current)
        try:
            await ensure_schema(database)
        finally:
            await database.dispose()

    asyncio.run(prepare())
    # The web stack is imported by the commands that serve, so the others start in a fraction of the time.
    from postventa.api.server import run_server, run_server_processes
    from postventa.wiring import create_app

    if workers > 1:
        run_server_processes(host, port, current, workers)
    else:
        run_server(create_app(current), host, port, current)


@app.command("demo")
def demo_command(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    emulator_port: Annotated[int, typer.Option(help="TCP port of the Mercado Libre emulator.")] = 8100,
) -> None:
    """The whole loop: a fresh embedded database, the Mercado Libre emulator, synced demo orders; serves."""
    from postventa.cli import demo

    demo.run(host, port, emulator_port)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to this version's schema."""

    async def run() -> None:
        database = open_database(settings())
        try:
            await upgrade(database)
        finally:
            await database.dispose()

    asyncio.run(run())
    emit({"Revision": head_revision(), "UpToDate": True})


@db_app.command("copy")
def db_copy(
    to: Annotated[str, typer.Option(help="The empty database to fill: postgresql://… or sqlite:///….")],
) -> None:
    """Copy every row of the configured database into an empty one (stop the service first)."""
    try:
        target = Database(to)
    except ValueError as error:
        report_error(f"invalid_database_url: {error}")
        raise typer.Exit(EXIT_INVALID) from None

    async def run() -> dict[str, int]:
        source = open_database(settings())
        try:
            await ensure_schema(source)
            return await copy_database(source, target)
        finally:
            await source.dispose()
            await target.dispose()

    emit({"Copied": run_command(run())})


@accounts_app.command("create")
def accounts_create(name: Annotated[str, typer.Argument(help="The account's name.")]) -> None:
    """Create a seller account; prints its id."""
    account = in_transaction(lambda connection: admin.create_account(connection, name, now()))
    emit({"Id": account.id, "Name": account.name})


@accounts_app.command("show")
def accounts_show(account_id: Annotated[int, typer.Argument(help="The account's id.")]) -> None:
    """Show an account and its Mercado Libre link's status (needs_relink: link it again)."""
    from postventa.api.render import account_json

    detail = in_transaction(lambda connection: admin.account_detail(connection, account_id), write=False)
    emit(account_json(detail))


@accounts_app.command("update")
def accounts_update(
    account_id: Annotated[int, typer.Argument(help="The account's id.")],
    name: Annotated[str | None, typer.Option("--name", help="The account's name.")] = None,
    business_name: Annotated[
        str | None, typer.Option("--business-name", help="Its business name; '' clears it.")
    ] = None,
    doc_type: Annotated[
        str | None, typer.Option("--doc-type", help="Its document type (e.g. CUIT); '' clears it.")
    ] = None,
    doc_number: Annotated[
        str | None, typer.Option("--doc-number", help="Its document number; '' clears it.")
    ] = None,
) -> None:
    """Change an account's name, business name or document (what GET /v2/accounts shows); prints it."""
    from postventa.api.render import account_json

    given = {"name": name, "business_name": business_name, "doc_type": doc_type, "doc_number": doc_number}
    # An empty text clears an optional field (the admin API's null); an empty name is refused.
    changes = {
        field: (value if value.strip() or field == "name" else None)
        for field, value in given.items()
        if value is not None
    }
    detail = in_transaction(lambda connection: admin.update_account(connection, account_id, changes))
    emit(account_json(detail))


RateLimitsText = Annotated[
    str | None, typer.Option(help="The key's own limits, e.g. send=10/minute,read=100/minute.")
]


@keys_app.command("create")
def keys_create(
    account: Annotated[list[int], typer.Option("--account", help="An account the key opens (repeatable).")],
    rate_limits: RateLimitsText = None,
) -> None:
    """Create an API key for one or more accounts; prints the key (shown only now)."""
    pepper = settings().api_key_pepper
    created = in_transaction(
        lambda connection: admin.create_api_key(connection, account, pepper, now(), rate_limits)
    )
    emit(
        {
            "Id": created.id,
            "ApiKey": created.api_key,
            "AccountIds": created.account_ids,
            "RateLimits": created.rate_limits,
        }
    )


@keys_app.command("limits")
def keys_limits(
    key_id: Annotated[int, typer.Argument(help="The key's id.")],
    rate_limits: Annotated[
        str | None,
        typer.Argument(metavar="TEXT", help="e.g. send=10/minute,read=100/minute; omit for the defaults."),
    ] = None,
) -> None:
    """Give an API key its own rate limits, or back to POSTVENTA_RATE_LIMITS without TEXT."""
    stored = in_transaction(lambda connection: admin.set_api_key_rate_limits(connection, key_id, rate_limits))
    emit({"Id": key_id, "RateLimits": stored})


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="The key's id.")]) -> None:
    """Revoke an API key."""
    in_transaction(lambda connection: admin.revoke_api_key(connection, key_id, now()))
    emit({"Id": key_id, "Revoked": True})


@orders_app.command("import")
def orders_import(
    file: Annotated[Path, typer.Argument(help='JSON: {"AccountId": n, "Orders": [OrderIn, ...]}')],
    account: Annotated[
        int | None, typer.Option(help="The account (instead of AccountId in the file).")
    ] = None,
) -> None:
    """Import (upsert) orders from a JSON file; any invalid order refuses the whole file."""
    document = _read_json_file(file)
    account_id = account if account is not None else document.pop("AccountId", None)
    if not isinstance(account_id, int) or isinstance(account_id, bool):
        report_error("give --account or an integer AccountId in the file")
        raise typer.Exit(EXIT_INVALID)
    document.pop("AccountId", None)
    imported = in_transaction(lambda connection: admin.import_orders(connection, account_id, document, now()))
    results = [{"Id": order.id, "ExternalOrderId": order.external_order_id} for order in imported]
    emit({"Results": results})


@app.command("buyer-reply")
def buyer_reply(
    order_id: Annotated[int, typer.Argument(help="The order (postventa id).")],
    text: Annotated[str, typer.Argument(help="What the buyer wrote.")],
) -> None:
    """Record a buyer's reply on an order's conversation."""
    message_id = in_transaction(
        lambda connection: record_buyer_reply(connection, order_id=order_id, text=text, now=now())
    )
    emit({"Id": message_id})


def _read_json_file(file: Path) -> dict[str, Any]:
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        report_error(f"cannot read {file}: {error.strerror}")
        raise typer.Exit(EXIT_INVALID) from None
    except (UnicodeDecodeError, ValueError) as error:
        report_error(f"{file} is not valid JSON: {error}")
        raise typer.Exit(EXIT_INVALID) from None
    if not isinstance(document, dict):
        report_error(f'{file} must hold an object: {{"AccountId": n, "Orders": [...]}}')
        raise typer.Exit(EXIT_INVALID)
    return document


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Messages delivered at the same time.")] = 8,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve this process's Prometheus metrics on this port.")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface of the metrics port.")] = "127.0.0.1",
) -> None:
    """Deliver queued messages and process Mercado Libre notifications until stopped (SIGINT/SIGTERM)."""
    current = settings()
    configure_logging(current.log_level)
    metrics_address = (metrics_host, metrics_port) if metrics_port is not None else None
    import uvloop  # the event loop uvicorn serves the API on: a delivery is mostly socket work

    uvloop.run(run_worker(current, concurrency, metrics_address))


@app.command()
def emulator(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8100,
    notify_url: Annotated[str | None, typer.Option(help="Where to POST notifications.")] = None,
) -> None:
    """Serve the Mercado Libre emulator (for tests and the demo)."""
    from postventa.emulator.app import run_emulator

    run_emulator(host, port, notify_url)


@accounts_app.command("link")
def accounts_link(
    account_id: Annotated[int, typer.Argument(help="The postventa account.")],
    seller_id: Annotated[int, typer.Option(help="The Mercado Libre seller (user) id.")],
    site_id: Annotated[str, typer.Option(help="The seller's site, e.g. MLA.")],
    client_id: Annotated[str, typer.Option(help="The Mercado Libre application's client id.")],
    client_secret: Annotated[str, typer.Option(help="The application's secret.")],
    refresh_token: Annotated[str, typer.Option(help="A refresh token of the seller for the application.")],
) -> None:
    """Link an account to a Mercado Libre seller (the credentials are checked with Mercado Libre)."""
    from postventa.services.marketplace import link_account

    payload = {
        "SellerId": seller_id,
        "SiteId": site_id,
        "ClientId": client_id,
        "ClientSecret": client_secret,
        "RefreshToken": refresh_token,
    }
    with_marketplace(lambda database, meli: link_account(database, account_id, payload, meli, now()))
    emit({"AccountId": account_id, "Linked": True})


@orders_app.command("sync")
def orders_sync(account_id: Annotated[int, typer.Argument(help="A linked account.")]) -> None:
    """Import the linked seller's orders from Mercado Libre."""
    from postventa.services.marketplace import sync_orders

    imported = with_marketplace(lambda database, meli: sync_orders(database, account_id, meli, now()))
    emit({"Imported": imported})


@messages_app.command("requeue")
def messages_requeue(
    message_id: Annotated[
        list[int] | None, typer.Argument(help="Failed messages to retry (default: all).")
    ] = None,
) -> None:
    """Put failed (dead-letter) messages back in the delivery queue."""
    count = in_transaction(lambda connection: requeue(connection, now(), message_id or None))
    emit({"Requeued": count})
