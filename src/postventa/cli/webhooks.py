"""`postventa webhooks`: an account's webhook endpoints (issue 20, docs/webhooks.md), on the configured
database. The services are imported when a command runs, so `postventa --help` stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from postventa.cli.runtime import emit, ensure_schema, in_transaction, now, run_command, settings
from postventa.wiring import open_database

if TYPE_CHECKING:
    from postventa.services.webhooks import EndpointWithSecret

webhooks_app = typer.Typer(
    help="Webhook endpoints: where an account's events are POSTed, signed (docs/webhooks.md).",
    no_args_is_help=True,
)


@webhooks_app.command("add")
def webhooks_add(
    account_id: Annotated[int, typer.Argument(help="The account whose events are sent.")],
    url: Annotated[str, typer.Argument(help="Where to POST them: https://… (see docs/webhooks.md).")],
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            help="An event type (repeatable): message.sent, message.moderated, message.failed, "
            "message.received, order.updated. None given: all of them.",
        ),
    ] = None,
) -> None:
    """Register a webhook endpoint; prints its signing secret, shown only now."""
    from postventa.api.render_webhooks import created_json
    from postventa.services import webhooks

    current = settings()

    async def run() -> EndpointWithSecret:
        # The URL's host is resolved before the write transaction opens (as the admin API does).
        checked = await webhooks.check_url(url, allow_private=current.webhook_allow_private)
        database = open_database(current)
        try:
            await ensure_schema(database)
            async with database.transaction(write=True) as connection:
                return await webhooks.register_endpoint(
                    connection, database.token_cipher, account_id, checked, event or None, now()
                )
        finally:
            await database.dispose()

    emit(created_json(run_command(run())))


@webhooks_app.command("list")
def webhooks_list(account_id: Annotated[int, typer.Argument(help="The account.")]) -> None:
    """The account's webhook endpoints, with whether each is enabled; no secrets."""
    from postventa.api.render_webhooks import endpoint_json
    from postventa.services import webhooks

    found = in_transaction(lambda connection: webhooks.list_endpoints(connection, account_id), write=False)
    emit({"Results": [endpoint_json(endpoint) for endpoint in found]})


@webhooks_app.command("delete")
def webhooks_delete(
    endpoint_id: Annotated[int, typer.Argument(metavar="ID", help="The endpoint's id.")],
) -> None:
    """Delete a webhook endpoint; its events not yet delivered are dropped."""
    from postventa.services import webhooks

    in_transaction(lambda connection: webhooks.delete_endpoint(connection, endpoint_id))
    emit({"Id": endpoint_id, "Deleted": True})
